"""The matrix's scenarios on one cell: real gunicorn, real logrotate, bounded load; a result dict each.

Every scenario runs twice on the same venv: patched, and as a control with UVICORN_USR1_PATCH=0
(the release's own behaviour).
- rotate (mode "report"): the report's logrotate stanza, postrotate USR1 to the master; or (mode
  "killall") USR1 to the master and each worker by PID. Two requests are in flight across it.
- storm: many rotations under steady load (numbered names), and copytruncate (no signal).
"""

import collections
import os
import shutil
import time

from tools import logrotate_run, venvs
from tools.gunicorn_run import Gunicorn, Load, Timeout, wait_for, writes_to
from tools.matrix.cells import installed_versions, loop_and_http, venv_for
from tools.matrix.judging import verdict
from tools.matrix.logs import BOOTING, LOGGING_ERROR, count_in_files, tags_in, with_rotated

IN_FLIGHT_SECONDS = 1.0


def request_path(app, tag, query=""):
    if app.startswith("fastapi_app"):
        return "/api/client?page_size=10&page=1&tag={}{}".format(tag, query)
    return "/api/client/t/{}?page_size=10&page=1{}".format(tag, query)


def load(gunicorn, tag, threads=2, max_requests=20000, max_seconds=60.0, query=""):
    """Tagged requests from `threads` clients (tools/gunicorn_run.Load), in this app's URL shape."""
    return Load(
        gunicorn,
        lambda t: request_path(gunicorn.app, t, query),
        tag,
        threads=threads,
        max_requests=max_requests,
        max_seconds=max_seconds,
    )


def sequential(gunicorn, tag, n):
    return load(gunicorn, tag, threads=1, max_requests=n, max_seconds=60).run_here()


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


def _finish(gunicorn, result, ok_tags, failed, pids_before, access, started):
    """Count what ended where, after gunicorn has stopped."""
    files = with_rotated(access)
    counts = collections.Counter()
    for path in files:
        counts.update(tags_in(path))
    ok_tags = set(ok_tags)
    result["ok_requests"] = len(ok_tags)
    result["failed_requests"] = len(failed)
    result["failures"] = [str(f) for f in failed[:5]]
    result["lost"] = sum(1 for t in ok_tags if counts[t] == 0)
    result["duplicated"] = sum(n - 1 for t, n in counts.items() if n > 1)
    error_logs = with_rotated(gunicorn.error_log)
    result["restarts"] = max(0, count_in_files(error_logs, BOOTING) - gunicorn.workers)
    result["logging_errors"] = count_in_files(
        error_logs + with_rotated(gunicorn.app_log) + [gunicorn.stderr_path], LOGGING_ERROR
    )
    result["access_file"] = os.path.basename(access)
    result["rotated_files"] = [os.path.basename(p) for p in files[1:]]
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def scenario_rotate(venv, cell, workdir, patched, mode="report", before=10, after=10):
    """Requests, logrotate with `mode`, requests; two requests are in flight during the rotation."""
    started = time.monotonic()
    gunicorn = _gunicorn(venv, cell, workdir, patched)
    result = {"scenario": mode, "patched": patched}
    with gunicorn:
        pids_before = gunicorn.worker_pids()
        first = sequential(gunicorn, "before", before)
        access = _access_file(gunicorn, [t for t, _ in first.ok])
        in_flight = load(
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
    rotated = [p for p in with_rotated(access)[1:]]
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
        steady = load(gunicorn, "load", threads=2, max_requests=50000, max_seconds=seconds + 30).start()
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
        steady.stop()
        last = sequential(gunicorn, "last", 5)
        result["pids_changed"] = gunicorn.worker_pids() != pids_before
    ok = [t for t, _ in first.ok + steady.ok + last.ok]
    failed = first.failed + steady.failed + last.failed
    _finish(gunicorn, result, ok, failed, pids_before, access, started)
    current = tags_in(access)
    result["last_in_new_file"] = sum(1 for t, _ in last.ok if current[t])
    result["last_expected"] = len(last.ok)
    return result


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
        out["not_installed"] = reason
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
