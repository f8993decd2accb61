"""The compatibility matrix: real gunicorn x uvicorn x Python stacks, real logrotate.

    python -m tools.matrix [--cells NAME ...] [--write COMPATIBILITY.md] [--json results.json]

Each cell is a cached venv (tools/venvs.py) holding one stack from PyPI plus this checkout's
wheel. Every scenario runs twice on the same venv: patched, and as a control with
UVICORN_USR1_PATCH=0 (the release's own behaviour). A scenario returns a result dict;
`judge_*` turn results into (ok, reasons), which tests/test_matrix.py asserts and
COMPATIBILITY.md reports.

Old uvicorn releases (0.4-0.13) pin few dependencies, so today's resolver would pick ones they
never ran with: such cells pin the uvloop/httptools/h11/click/websockets of their time (uvloop
0.14/0.15 keep their `asyncio.get_event_loop()` under uvloop's policy working).

family: uvicorn_usr1_patch/releases.py's "pass" (0.4.0-0.13.2: workers ignore USR1), "reset"
(0.13.3-0.18.3: USR1 kills the workers), "sync" (0.19.0+ and uvicorn-worker: a synchronous
`handle_usr1` in the signal handler).
key: the cells that run every scenario; the others run scenarios 1-2 with their controls.
"""

import argparse
import collections
import glob
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from tools import logrotate_run, venvs
from tools.gunicorn_run import Gunicorn, Timeout, wait_for, writes_to
from tools.stacks import H11_WORKER as H11
from tools.stacks import PACKAGE_WORKER
from tools.stacks import UVICORN_WORKER as UVICORN
from uvicorn_usr1_patch.releases import PASS, RESET, SYNC, version_key

# dependencies as of 2019-2020, for uvicorn 0.4-0.13 (no upper bounds in their metadata)
_OLD_PY36 = ["uvloop==0.14.0", "httptools==0.1.1", "h11==0.9.0", "click==7.1.2", "websockets==8.1"]
_OLD_PY39 = ["uvloop==0.15.3", "httptools==0.1.2", "h11==0.11.0", "click==7.1.2", "websockets==8.1"]


def _cell(name, python, gunicorn, uvicorn, worker, family, workers_py, extra=(), key=False, app=None):
    requirements = ["gunicorn==" + gunicorn] + [uvicorn] + list(extra)
    return {
        "name": name,
        "python": python,
        "requirements": requirements,
        "gunicorn": gunicorn,
        "uvicorn": uvicorn,
        "worker": worker,
        "family": family,
        "workers_py": workers_py,  # the run of releases sharing this workers.py
        "key": key,
        "app": app or "matrix_app:app",
    }


CELLS = [
    # the report: CentOS 7, Python 3.8.3, gunicorn 20.0.4, uvicorn 0.13.1 (uvloop + httptools), fastapi 0.62.0
    _cell(
        "report-py3.8-g20.0.4-u0.13.1",
        "3.8",
        "20.0.4",
        "uvicorn[standard]==0.13.1",
        UVICORN,
        PASS,
        "0.12.2-0.13.2",
        ["uvloop==0.14.0", "httptools==0.1.1", "fastapi==0.62.0"],
        key=True,
        app="fastapi_app:app",
    ),
    _cell(
        "py3.6-g19.9.0-u0.4.2",
        "3.6",
        "19.9.0",
        "uvicorn==0.4.2",
        UVICORN,
        PASS,
        "0.4.0-0.4.2",
        _OLD_PY36,
        key=True,
    ),
    _cell("py3.6-g19.9.0-u0.4.3-h11", "3.6", "19.9.0", "uvicorn==0.4.3", H11, PASS, "0.4.3", _OLD_PY36),
    _cell(
        "py3.7-g19.10.0-u0.4.5",
        "3.7",
        "19.10.0",
        "uvicorn==0.4.5",
        UVICORN,
        PASS,
        "0.4.4-0.4.5",
        _OLD_PY36,
    ),
    _cell("py3.7-g20.0.4-u0.4.6-h11", "3.7", "20.0.4", "uvicorn==0.4.6", H11, PASS, "0.4.6", _OLD_PY36),
    _cell(
        "py3.7-g20.0.4-u0.7.3",
        "3.7",
        "20.0.4",
        "uvicorn==0.7.3",
        UVICORN,
        PASS,
        "0.5.0-0.9.0 (not 0.6.1)",
        key=True,
    ),
    _cell("py3.7-g20.0.4-u0.6.1-h11", "3.7", "20.0.4", "uvicorn==0.6.1", H11, PASS, "0.6.1"),
    _cell(
        "py3.8-g20.0.4-u0.9.1",
        "3.8",
        "20.0.4",
        "uvicorn==0.9.1",
        UVICORN,
        PASS,
        "0.9.1",
        ["uvloop==0.14.0"],
    ),
    _cell(
        "py3.8-g20.1.0-u0.11.1-h11",
        "3.8",
        "20.1.0",
        "uvicorn==0.11.1",
        H11,
        PASS,
        "0.10.0-0.11.1 (not 0.10.9)",
        ["uvloop==0.14.0"],
    ),
    _cell(
        "py3.8-g20.1.0-u0.10.9",
        "3.8",
        "20.1.0",
        "uvicorn==0.10.9",
        UVICORN,
        PASS,
        "0.10.9",
        ["uvloop==0.14.0"],
    ),
    _cell(
        "py3.8-g20.0.4-u0.11.3",
        "3.8",
        "20.0.4",
        "uvicorn==0.11.3",
        UVICORN,
        PASS,
        "0.11.2-0.11.3",
        _OLD_PY36,
    ),
    _cell(
        "py3.9-g20.1.0-u0.11.4-h11",
        "3.9",
        "20.1.0",
        "uvicorn==0.11.4",
        H11,
        PASS,
        "0.11.4",
        ["uvloop==0.15.3"],
        key=True,
    ),
    _cell(
        "py3.9-g20.1.0-u0.12.1",
        "3.9",
        "20.1.0",
        "uvicorn==0.12.1",
        UVICORN,
        PASS,
        "0.11.5-0.12.1",
        _OLD_PY39,
    ),
    _cell(
        "py3.9-g21.2.0-u0.13.2-h11",
        "3.9",
        "21.2.0",
        "uvicorn==0.13.2",
        H11,
        PASS,
        "0.12.2-0.13.2",
        _OLD_PY39,
    ),
    _cell(
        "py3.9-g20.1.0-u0.13.3",
        "3.9",
        "20.1.0",
        "uvicorn[standard]==0.13.3",
        UVICORN,
        RESET,
        "0.13.3-0.13.4",
        ["uvloop==0.15.3", "httptools==0.1.2"],
        key=True,
    ),
    _cell("py3.10-g21.2.0-u0.14.0", "3.10", "21.2.0", "uvicorn==0.14.0", UVICORN, RESET, "0.14.0", key=True),
    _cell(
        "py3.10-g21.2.0-u0.16.0",
        "3.10",
        "21.2.0",
        "uvicorn[standard]==0.16.0",
        UVICORN,
        RESET,
        "0.15.0-0.16.0",
    ),
    _cell(
        "py3.10-g20.1.0-u0.18.3",
        "3.10",
        "20.1.0",
        "uvicorn[standard]==0.18.3",
        UVICORN,
        RESET,
        "0.17.0-0.18.3",
        key=True,
    ),
    _cell(
        "py3.11-g21.2.0-u0.19.0",
        "3.11",
        "21.2.0",
        "uvicorn[standard]==0.19.0",
        UVICORN,
        SYNC,
        "0.19.0",
        key=True,
    ),
    _cell(
        "py3.11-g22.0.0-u0.29.0-h11",
        "3.11",
        "22.0.0",
        "uvicorn==0.29.0",
        H11,
        SYNC,
        "0.20.0-0.29.0",
        key=True,
    ),
    _cell(
        "py3.12-g23.0.0-u0.29.0",
        "3.12",
        "23.0.0",
        "uvicorn[standard]==0.29.0",
        UVICORN,
        SYNC,
        "0.20.0-0.29.0",
        key=True,
    ),
    _cell(
        "py3.13-g27.0.1-u0.54.0",
        "3.13",
        "27.0.1",
        "uvicorn[standard]==0.54.0",
        UVICORN,
        SYNC,
        "0.30.0+ (deprecated module)",
        key=True,
    ),
    _cell(
        "py3.13-g27.0.1-uvicorn-worker0.4.0",
        "3.13",
        "27.0.1",
        "uvicorn-worker==0.4.0",
        PACKAGE_WORKER,
        SYNC,
        "uvicorn-worker package",
        ["uvicorn[standard]"],
        key=True,
    ),
    _cell(
        "py3.12-g23.0.0-uvicorn-worker0.4.0-asyncio",
        "3.12",
        "23.0.0",
        "uvicorn-worker==0.4.0",
        PACKAGE_WORKER,
        SYNC,
        "uvicorn-worker package",
    ),
]

# A combination that cannot install, kept so that it is reported with uv's reason.
CELLS.append(
    _cell(
        "py3.9-g27.0.1-u0.54.0",
        "3.9",
        "27.0.1",
        "uvicorn[standard]==0.54.0",
        UVICORN,
        SYNC,
        "0.30.0+ (deprecated module)",
    )
)

# A request's tag rides in its path (/api/client/t/TAG): uvicorn 0.4-0.8 log the path without the
# query string. The FastAPI app of the report keeps the report's URL and takes it as `&tag=TAG`.
TAG = re.compile(r"(?:tag=|/t/)([A-Za-z0-9_.-]+)")
LOGGING_ERROR = "--- Logging error ---"
BOOTING = "Booting worker with pid"
IN_FLIGHT_SECONDS = 1.0


def by_name(names):
    wanted = set(names)
    found = [c for c in CELLS if c["name"] in wanted]
    missing = wanted - set(c["name"] for c in found)
    if missing:
        raise SystemExit("no such cell: " + ", ".join(sorted(missing)))
    return found


# -- venvs ------------------------------------------------------------------------------------
def venv_for(cell):
    """(venv, None), or (None, reason) when the cell cannot be installed on this machine."""
    try:
        return venvs.ensure(cell["python"], cell["requirements"], with_patch=True), None
    except LookupError as exc:
        return None, str(exc)
    except subprocess.CalledProcessError as exc:
        lines = [line for line in (exc.output or "").splitlines() if line.strip()]
        return None, "uv could not install it: " + " ".join(line.strip() for line in lines[-6:])


def installed_versions(venv):
    """{distribution: version} from the venv's dist-info directories (works on every Python)."""
    found = {}
    for path in glob.glob(os.path.join(venv.path, "lib", "python*", "site-packages", "*.dist-info")):
        name, _, version = os.path.basename(path)[: -len(".dist-info")].partition("-")
        found[name.lower().replace("_", "-")] = version
    return found


def loop_and_http(cell, versions):
    """What the worker class runs on, from uvicorn's CONFIG_KWARGS of that release."""
    uvicorn = version_key(versions.get("uvicorn", "0"))
    if cell["worker"] == H11:
        loop, http = "asyncio", "h11"
    elif uvicorn < (0, 14):  # CONFIG_KWARGS = {"loop": "uvloop", "http": "httptools"}
        loop, http = "uvloop", "httptools"
    else:  # "auto": uvloop and httptools when installed
        loop = "uvloop" if "uvloop" in versions else "asyncio"
        http = "httptools" if "httptools" in versions else "h11"
    return " / ".join(name + (" " + versions[name] if name in versions else "") for name in (loop, http))


# -- reading the logs -------------------------------------------------------------------------
def _lines(path):
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            return [line.decode("utf-8", "replace") for line in f]
    except OSError:
        return []


def tags_in(path, prefix=""):
    """Counter of request tags in the lines of `path` (plain or .gz) that start with `prefix`."""
    found = collections.Counter()
    for line in _lines(path):
        if line.startswith(prefix):
            match = TAG.search(line)
            if match:
                found[match.group(1)] += 1
    return found


def family_of_files(path):
    """`path` and every rotated copy of it (dateext or numbered, plain or .gz)."""
    return [path] + sorted(set(glob.glob(path + "-*") + glob.glob(path + ".*")))


def count_in_files(paths, needle):
    return sum(line.count(needle) for path in paths for line in _lines(path))


# -- load -------------------------------------------------------------------------------------
class Load(object):
    """`threads` clients sending tagged requests back to back, bounded in count and time."""

    def __init__(self, gunicorn, tag, threads=2, max_requests=20000, max_seconds=60.0, query=""):
        self.gunicorn = gunicorn
        self.tag = tag
        self.query = query
        self.max_requests = max_requests
        self.deadline = time.monotonic() + max_seconds
        self.ok = []
        self.failed = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sent = 0
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, index):
        i = 0
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            with self._lock:
                if self._sent >= self.max_requests:
                    return
                self._sent += 1
            tag = "{}-{}-{}".format(self.tag, index, i)
            i += 1
            try:
                status, _ = self.gunicorn.get(request_path(self.gunicorn.app, tag, self.query), timeout=15)
                (self.ok if status == 200 else self.failed).append((tag, status))
            except Exception as exc:  # connection reset by a dying worker, timeout...
                self.failed.append((tag, "{}: {}".format(type(exc).__name__, exc)))

    def start(self):
        for thread in self._threads:
            thread.start()
        return self

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        return self

    def join(self):
        for thread in self._threads:
            thread.join(30)
        return self


def request_path(app, tag, query=""):
    if app.startswith("fastapi_app"):
        return "/api/client?page_size=10&page=1&tag={}{}".format(tag, query)
    return "/api/client/t/{}?page_size=10&page=1{}".format(tag, query)


def sequential(gunicorn, tag, n):
    load = Load(gunicorn, tag, threads=1, max_requests=n, max_seconds=60)
    load._run(0)
    return load


# -- one gunicorn run -------------------------------------------------------------------------
def _gunicorn(venv, cell, workdir, patched):
    env = {} if patched else {"UVICORN_USR1_PATCH": "0"}
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    return Gunicorn(venv, workdir, worker_class=cell["worker"], app=cell["app"], env=env)


def _reopened(gunicorn, access):
    """Master and every worker hold the files now at the log paths (i.e. they reopened)."""
    master = gunicorn.master_pid
    paths = [access, gunicorn.error_log]
    if not all(writes_to(master, p) for p in paths):
        return False
    pids = gunicorn.worker_pids()
    return len(pids) == gunicorn.workers and all(
        writes_to(pid, p) for pid in pids for p in paths + [gunicorn.app_log]
    )


def _access_file(gunicorn, tags):
    """Where this release writes access lines: access.log, or (uvicorn 0.4) the error log."""
    for path in (gunicorn.access_log, gunicorn.error_log):
        if any(t in tags_in(path) for t in tags):
            return path
    raise AssertionError("no access line for {} in access.log or error.log".format(tags[:3]))


def _problems_common(result):
    """Checks shared by every signal-based scenario; returns a list of problems."""
    problems = []
    if result["failed_requests"]:
        problems.append("{} failed requests".format(result["failed_requests"]))
    if result["restarts"]:
        problems.append("{} worker restarts".format(result["restarts"]))
    if result["lost"]:
        problems.append("{} access lines lost".format(result["lost"]))
    if result["duplicated"]:
        problems.append("{} access lines duplicated".format(result["duplicated"]))
    if result["logging_errors"]:
        problems.append("{} `Logging error` tracebacks".format(result["logging_errors"]))
    return problems


def _finish(gunicorn, result, ok_tags, failed, pids_before, access, started):
    """Count what ended where, after gunicorn has stopped."""
    files = family_of_files(access)
    counts = collections.Counter()
    for path in files:
        counts.update(tags_in(path))
    ok_tags = set(ok_tags)
    result["ok_requests"] = len(ok_tags)
    result["failed_requests"] = len(failed)
    result["failures"] = [str(f) for f in failed[:5]]
    result["lost"] = sum(1 for t in ok_tags if counts[t] == 0)
    result["duplicated"] = sum(n - 1 for t, n in counts.items() if n > 1)
    error_logs = family_of_files(gunicorn.error_log)
    result["restarts"] = max(0, count_in_files(error_logs, BOOTING) - gunicorn.workers)
    result["logging_errors"] = count_in_files(
        error_logs + family_of_files(gunicorn.app_log) + [gunicorn.stderr_path], LOGGING_ERROR
    )
    result["access_file"] = os.path.basename(access)
    result["rotated_files"] = [os.path.basename(p) for p in files[1:]]
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


# -- scenarios 1 and 2: one logrotate run (the report's config, or killall-style signals) -------
def scenario_rotate(venv, cell, workdir, patched, mode="report", before=10, after=10):
    """Requests, logrotate with `mode`, requests; two requests are in flight during the rotation."""
    started = time.monotonic()
    gunicorn = _gunicorn(venv, cell, workdir, patched)
    result = {"scenario": mode, "patched": patched}
    with gunicorn:
        pids_before = gunicorn.worker_pids()
        first = sequential(gunicorn, "before", before)
        access = _access_file(gunicorn, [t for t, _ in first.ok])
        in_flight = Load(
            gunicorn,
            "inflight",
            threads=2,
            max_requests=2,
            max_seconds=30,
            query="&sleep={}".format(IN_FLIGHT_SECONDS),
        ).start()
        wait_for(lambda: count_in_files([gunicorn.app_log], "begun ") >= 2, 10, what="2 requests in flight")
        rotation = logrotate_run.Logrotate(
            workdir, [gunicorn.access_log, gunicorn.error_log, gunicorn.app_log], gunicorn.pidfile, mode
        )
        rotation.rotate()
        try:
            wait_for(lambda: _reopened(gunicorn, access), 5 if patched else 3, what="reopen")
            result["reopened"] = True
        except Timeout:
            result["reopened"] = False
        in_flight.join()
        second = sequential(gunicorn, "after", after)
        result["pids_changed"] = gunicorn.worker_pids() != pids_before
    ok = [t for t, _ in first.ok + in_flight.ok + second.ok]
    failed = first.failed + in_flight.failed + second.failed
    _finish(gunicorn, result, ok, failed, pids_before, access, started)
    new = tags_in(access)
    rotated = [p for p in family_of_files(access)[1:]]
    old = collections.Counter()
    for path in rotated:
        old.update(tags_in(path))
    before_tags = set(t for t, _ in first.ok)
    after_tags = set(t for t, _ in second.ok)
    result["after_in_new_file"] = sum(1 for t in after_tags if new[t])
    result["after_expected"] = len(after_tags)
    result["before_in_rotated"] = sum(1 for t in before_tags if old[t])
    result["before_expected"] = len(before_tags)
    result["rotated_extra"] = sorted(t for t in old if t not in before_tags)[:5]
    result["rotated_gz"] = all(p.endswith(".gz") for p in rotated) and len(rotated) == 1
    app_new = tags_in(gunicorn.app_log, "served")
    result["app_after_in_new_file"] = sum(1 for t in after_tags if app_new[t])
    result["inflight_failed"] = len(in_flight.failed)
    return result


def judge_rotate(result):
    """(ok, problems) for a patched run of scenario 1 or 2."""
    problems = _problems_common(result)
    if result["pids_changed"]:
        problems.append("worker PIDs changed")
    if not result["reopened"]:
        problems.append("master/workers did not reopen access, error and app logs")
    if result["after_in_new_file"] != result["after_expected"]:
        problems.append(
            "{}/{} post-rotation lines in the new {}".format(
                result["after_in_new_file"], result["after_expected"], result["access_file"]
            )
        )
    if result["before_in_rotated"] != result["before_expected"] or result["rotated_extra"]:
        problems.append(
            "rotated file holds {}/{} earlier lines and {} others".format(
                result["before_in_rotated"], result["before_expected"], len(result["rotated_extra"])
            )
        )
    if not result["rotated_gz"]:
        problems.append("expected one compressed rotated file, got {}".format(result["rotated_files"]))
    if result["app_after_in_new_file"] != result["after_expected"]:
        problems.append(
            "{}/{} post-rotation app.log lines in the new app.log".format(
                result["app_after_in_new_file"], result["after_expected"]
            )
        )
    return not problems, problems


def control_shows_bug(cell, result):
    """(shown, description) of the release's own failure in a control run of scenario 1 or 2."""
    if cell["family"] == PASS:
        shown = result["after_in_new_file"] == 0 and not result["reopened"]
        return shown, "{}/{} post-rotation lines in the new {} (the rest went to the rotated file)".format(
            result["after_in_new_file"], result["after_expected"], result["access_file"]
        )
    if cell["family"] == RESET:
        shown = result["pids_changed"] and result["inflight_failed"] > 0
        return shown, "workers killed: PIDs changed, {} restarts, {}/2 in-flight requests failed".format(
            result["restarts"], result["inflight_failed"]
        )
    ok, problems = judge_rotate(result)
    return False, "works (synchronous reopen)" if ok else "; ".join(problems)


# -- scenario 3: many rotations under steady load; scenario 5: copytruncate ---------------------
def scenario_storm(venv, cell, workdir, patched, mode="numbered", rotations=50, seconds=10.0):
    """`rotations` logrotate runs spread over `seconds` while 2 clients send requests."""
    started = time.monotonic()
    gunicorn = _gunicorn(venv, cell, workdir, patched)
    result = {"scenario": mode, "patched": patched, "rotations": rotations}
    with gunicorn:
        pids_before = gunicorn.worker_pids()
        first = sequential(gunicorn, "warm", 3)
        access = _access_file(gunicorn, [t for t, _ in first.ok])
        rotation = logrotate_run.Logrotate(
            workdir, [gunicorn.access_log, gunicorn.error_log, gunicorn.app_log], gunicorn.pidfile, mode
        )
        load = Load(gunicorn, "load", threads=2, max_requests=50000, max_seconds=seconds + 30).start()
        t0 = time.monotonic()
        for i in range(rotations):
            # evenly spread: wait for the i-th slot (a bounded, scheduled pace, not a guess)
            delay = t0 + i * seconds / rotations - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            rotation.rotate()
        if mode != "copytruncate":
            try:
                wait_for(lambda: _reopened(gunicorn, access), 10 if patched else 3, what="final reopen")
            except Timeout:
                pass
        load.stop()
        last = sequential(gunicorn, "last", 5)
        result["pids_changed"] = gunicorn.worker_pids() != pids_before
    ok = [t for t, _ in first.ok + load.ok + last.ok]
    failed = first.failed + load.failed + last.failed
    _finish(gunicorn, result, ok, failed, pids_before, access, started)
    current = tags_in(access)
    result["last_in_new_file"] = sum(1 for t, _ in last.ok if current[t])
    result["last_expected"] = len(last.ok)
    return result


def judge_storm(result):
    problems = _problems_common(result)
    if result["pids_changed"]:
        problems.append("worker PIDs changed")
    if result["last_in_new_file"] != result["last_expected"]:
        problems.append(
            "{}/{} lines after the last rotation in the new {}".format(
                result["last_in_new_file"], result["last_expected"], result["access_file"]
            )
        )
    return not problems, problems


# -- a whole cell -----------------------------------------------------------------------------
def run_cell(cell, workroot, full=None, log=print):
    """Run the cell's scenarios (all of them on key cells, or when full=True); a result dict."""
    started = time.monotonic()
    full = cell["key"] if full is None else full
    out = {
        "cell": cell["name"],
        "python": cell["python"],
        "worker": cell["worker"],
        "family": cell["family"],
        "workers_py": cell["workers_py"],
        "full": full,
        "requirements": cell["requirements"],
    }
    venv, reason = venv_for(cell)
    out["install_seconds"] = round(time.monotonic() - started, 1)
    if venv is None:
        out["skipped"] = reason
        log("{:<45} cannot install: {}".format(cell["name"], reason[:200]))
        return out
    versions = installed_versions(venv)
    out["versions"] = {
        k: versions.get(k)
        for k in ("gunicorn", "uvicorn", "uvicorn-worker", "uvloop", "httptools", "h11", "fastapi")
        if versions.get(k)
    }
    out["python_full"] = os.path.basename(os.path.dirname(os.path.dirname(venvs.python(cell["python"]))))
    out["loop_http"] = loop_and_http(cell, versions)
    workdir = os.path.join(workroot, cell["name"])
    scenarios = [
        ("report", scenario_rotate, {"mode": "report"}),
        ("killall", scenario_rotate, {"mode": "killall"}),
    ]
    if full:
        scenarios += [("storm", scenario_storm, {"mode": "numbered"})]
    results = {}
    for name, function, kwargs in scenarios:
        for patched in (True, False):
            key = "{}/{}".format(name, "patched" if patched else "control")
            t = time.monotonic()
            try:
                results[key] = function(
                    venv, cell, os.path.join(workdir, key.replace("/", "-")), patched, **kwargs
                )
            except Exception as exc:  # a harness failure is a result too: it must fail the cell
                results[key] = {"error": "{}: {}".format(type(exc).__name__, exc)[-2000:]}
            log("  {:<45} {:<18} {:5.1f}s".format(cell["name"], key, time.monotonic() - t))
    if full:
        t = time.monotonic()
        try:
            results["copytruncate"] = scenario_storm(
                venv,
                cell,
                os.path.join(workdir, "copytruncate"),
                True,
                mode="copytruncate",
                rotations=20,
                seconds=5.0,
            )
        except Exception as exc:
            results["copytruncate"] = {"error": "{}: {}".format(type(exc).__name__, exc)[-2000:]}
        log("  {:<45} {:<18} {:5.1f}s".format(cell["name"], "copytruncate", time.monotonic() - t))
    out["results"] = results
    out["verdict"] = verdict(cell, results)
    out["seconds"] = round(time.monotonic() - started, 1)
    log("{:<45} {} {:6.1f}s".format(cell["name"], "PASS" if out["verdict"]["ok"] else "FAIL", out["seconds"]))
    return out


def verdict(cell, results):
    """Patched runs must pass; controls of affected releases must show the bug."""
    problems, control_notes, patched_notes = [], [], []
    for key, result in sorted(results.items()):
        if key == "copytruncate":
            continue
        scenario, kind = key.split("/")
        if "error" in result:
            problems.append("{}: harness error: {}".format(key, result["error"]))
            continue
        if kind == "patched":
            judge = judge_storm if scenario == "storm" else judge_rotate
            ok, why = judge(result)
            patched_notes.append("{}: {}".format(scenario, "pass" if ok else "; ".join(why)))
            if not ok:
                problems.append("{}: {}".format(key, "; ".join(why)))
        elif scenario == "storm":
            ok, why = judge_storm(result)
            control_notes.append("storm: {}".format("works" if ok else "; ".join(why)))
        else:
            shown, description = control_shows_bug(cell, result)
            control_notes.append("{}: {}".format(scenario, description))
            if cell["family"] != SYNC and not shown:
                problems.append("{}: control did not show the bug: {}".format(key, description))
    return {"ok": not problems, "problems": problems, "control": control_notes, "patched": patched_notes}


# -- COMPATIBILITY.md -------------------------------------------------------------------------
def _sum(results, field, kind):
    return sum(r.get(field, 0) for k, r in results.items() if k.endswith("/" + kind) and "error" not in r)


def write_markdown(cells_out, path, wall_seconds, command):
    rows = []
    skipped = []
    for out in cells_out:
        if "skipped" in out:
            skipped.append(out)
            continue
        v = out["versions"]
        results = out["results"]
        uvicorn = (
            "uvicorn-worker {} (uvicorn {})".format(v["uvicorn-worker"], v["uvicorn"])
            if "uvicorn-worker" in v
            else "uvicorn {}".format(v.get("uvicorn"))
        )
        copy = results.get("copytruncate")
        copy_note = ""
        if copy and "error" not in copy:
            copy_note = "{} of {}".format(copy["lost"], copy["ok_requests"])
        rows.append(
            "| {} | {} | {} | {} | `{}` | {} | {} | {} | {} | {} / {} | {} / {} | {} / {} | {} | {} |".format(
                out["cell"],
                out["python_full"],
                v.get("gunicorn"),
                uvicorn,
                out["worker"].split(".")[-1],
                out["loop_http"],
                out["workers_py"],
                "<br>".join(out["verdict"]["control"]),
                "**PASS**"
                if out["verdict"]["ok"]
                else "**FAIL**: " + "<br>".join(out["verdict"]["problems"]),
                _sum(results, "lost", "control"),
                _sum(results, "lost", "patched"),
                _sum(results, "restarts", "control"),
                _sum(results, "restarts", "patched"),
                _sum(results, "failed_requests", "control"),
                _sum(results, "failed_requests", "patched"),
                copy_note or "not run",
                out["seconds"],
            )
        )
    text = [
        "# Compatibility matrix",
        "",
        "Generated by `{}` on this machine ({} cells, {:.0f} s wall). Do not edit by hand.".format(
            command, len(cells_out), wall_seconds
        ),
        "",
        "**{} of {} installed cells pass** (every patched run passes and every control of an affected".format(
            sum(1 for o in cells_out if "skipped" not in o and o["verdict"]["ok"]),
            sum(1 for o in cells_out if "skipped" not in o),
        ),
        "release shows its bug); {} could not install (listed at the end). One command reruns all".format(
            len([o for o in cells_out if "skipped" in o])
        ),
        "and rewrites this file: `python -m tools.matrix --write COMPATIBILITY.md` (add `--full` for every",
        "scenario on every cell). Per-cell and per-scenario times are printed as it runs.",
        "",
        "Every cell is a venv with real releases from PyPI and this package's wheel; gunicorn runs 2 workers",
        "on 127.0.0.1; `logrotate` is the real binary. Each scenario runs **patched** and as a **control**",
        "with `UVICORN_USR1_PATCH=0` (the release's own behaviour) on the same venv.",
        "",
        "- **report**: the report's logrotate stanza (create, compress, nodelaycompress, dateext,",
        "  `dateformat -%Y-%m-%d-%s`, missingok, notifempty) on access.log, error.log and app.log, with",
        "  `postrotate kill -USR1 $(cat gunicorn.pid)`. 10 requests before, 2 in flight (1 s) across the",
        "  rotation, 10 after. Patched passes when every post-rotation line is in the new file (access and",
        "  app.log), the `.gz` holds exactly the earlier lines, lines = successful requests, worker PIDs are",
        "  unchanged, master and workers hold the new access/error/app logs, and no `Logging error` appears.",
        "- **killall**: the same with the postrotate sending USR1 to the master and to each worker, by PID",
        "  (the master's children as listed in /proc/PID/task/PID/children), as `killall -s USR1 gunicorn`",
        "  does.",
        "- **storm** (key cells): 50 logrotate runs in 10 s under 2 back-to-back clients, numbered names",
        "  (dateext cannot rotate twice a second) and no compression (so a line written late to an old file",
        "  is still counted, see tools/logrotate_run.py): nothing lost or duplicated across all rotated",
        "  files, the lines after the last rotation in the new file, no failed request, no restart, no",
        "  `Logging error`.",
        "- **copytruncate** (key cells, reported only): 20 rotations in 5 s in copytruncate mode, no signal.",
        "- **control** column: what the release does on its own. 0.4.0-0.13.2 must show post-rotation",
        "  lines missing from the new file; 0.13.3-0.18.3 must show workers killed (PIDs change) and",
        "  in-flight requests failing; both are asserted. Fixed releases (0.19+, uvicorn-worker) work",
        "  without the patch but reopen synchronously inside the signal handler: recorded, not asserted.",
        "- Lines lost / restarts / failed requests are summed over the cell's scenarios (control / patched).",
        "- Non-key cells run report + killall with controls; key cells (marked *) run every scenario (the",
        "  whole set on every cell does not fit CI's 30-minute share on 2 cores; `--full` runs it).",
        "- uvicorn 0.4.0 is represented by 0.4.2 (same workers.py): 0.4.0's files on PyPI lack the",
        "  `uvicorn/lifespan` package, so no worker boots (`ModuleNotFoundError`).",
        "- uvicorn 0.4.x logs access lines through gunicorn's error logger, so for it the error log is the",
        "  file checked (it is rotated by the same config).",
        "",
        "| cell | Python | gunicorn | uvicorn | worker | loop / http | workers.py family | control "
        "(`UVICORN_USR1_PATCH=0`) | patched | lines lost (ctl / patched) | restarts (ctl / patched) | "
        "failed requests (ctl / patched) | copytruncate lines lost | seconds |",
        "|" + "---|" * 14,
    ]
    for out, row in zip([o for o in cells_out if "skipped" not in o], rows):
        text.append(
            row.replace(
                "| " + out["cell"] + " |", "| " + out["cell"] + (" *" if out["full"] else "") + " |", 1
            )
        )
    text += ["", "## Combinations that could not install", ""]
    if skipped:
        for out in skipped:
            text.append(
                "- `{}` (Python {}, `{}`): {}".format(
                    out["cell"], out["python"], " ".join(out["requirements"]), out["skipped"]
                )
            )
    else:
        text.append("None.")
    with open(path, "w") as f:
        f.write("\n".join(text) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.matrix", description=__doc__.split("\n")[0])
    parser.add_argument("--cells", nargs="*", help="cell names (default: all)")
    parser.add_argument("--full", action="store_true", help="every scenario on every cell")
    parser.add_argument("--write", metavar="MARKDOWN", help="write the table (e.g. COMPATIBILITY.md)")
    parser.add_argument("--json", metavar="FILE", help="write the raw results")
    parser.add_argument("--from-json", metavar="FILE", help="only rewrite --write from saved results")
    parser.add_argument(
        "--from-results",
        metavar="DIR",
        help="only rewrite --write from a pytest run's MATRIX_RESULTS directory",
    )
    parser.add_argument("--wall", help="with --from-results: the run's wall time in seconds")
    parser.add_argument("--list", action="store_true", help="list the cells")
    args = parser.parse_args(argv)
    if args.list:
        for cell in CELLS:
            print("{:<45} py{:<5} {}".format(cell["name"], cell["python"], " ".join(cell["requirements"])))
        return 0
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        write_markdown(saved["cells"], args.write, saved["wall_seconds"], saved["command"])
        return 0
    if args.from_results:
        outs = []
        for cell in CELLS:
            path = os.path.join(args.from_results, cell["name"] + ".json")
            if os.path.exists(path):
                with open(path) as f:
                    outs.append(json.load(f))
        # the pytest run's wall time when given, else the sum of the cells' own times
        wall = (
            float(args.wall)
            if args.wall
            else sum(o.get("seconds", o.get("install_seconds", 0)) for o in outs)
        )
        command = "MATRIX_RESULTS=DIR pytest -m e2e tests/test_matrix.py` then `python -m tools.matrix "
        command += "--from-results DIR --write " + args.write
        write_markdown(outs, args.write, wall, command)
        return 0
    cells = by_name(args.cells) if args.cells else CELLS
    command = (
        "python -m tools.matrix"
        + (" --cells " + " ".join(args.cells) if args.cells else "")
        + (" --full" if args.full else "")
        + (" --write " + args.write if args.write else "")
    )
    started = time.monotonic()
    workroot = tempfile.mkdtemp(prefix="matrix-")
    outs = []
    try:
        for cell in cells:
            outs.append(run_cell(cell, workroot, full=True if args.full else None))
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    wall = time.monotonic() - started
    print("matrix: {} cells in {:.0f} s".format(len(outs), wall))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cells": outs, "wall_seconds": wall, "command": command}, f, indent=1)
    if args.write:
        write_markdown(outs, args.write, wall, command)
    failed = [o["cell"] for o in outs if "skipped" not in o and not o["verdict"]["ok"]]
    for out in outs:
        if "skipped" not in out and not out["verdict"]["ok"]:
            print("FAIL {}: {}".format(out["cell"], "; ".join(out["verdict"]["problems"])))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
