"""Run plain uvicorn (no gunicorn) on 127.0.0.1 with file logging, and look at it from outside.

`uvicorn asgi_app:app --log-config log_config.json` as an operator runs it: the access and
error logs are logging.FileHandlers (uvicorn writes no log file of its own), the app writes
app.log. Single process, `--workers N` or `--reload`. Waits poll with a deadline; processes
are stopped by the PIDs started here or read from /proc.
"""

import json
import os
import signal
import subprocess
import sys

from tools.gunicorn_run import (
    APPS,
    Timeout,
    _read,
    children,
    count_lines,
    free_port,
    http_get,
    wait_for,
    writes_to,
)


def log_config(access_log, error_log, mode="a"):
    """uvicorn's --log-config (JSON, read by every release from 0.14 on): FileHandlers only,
    opened with `mode` ("w": truncated at start, as a dictConfig "mode": "w" does)."""
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(process)d %(message)s"}},
        "handlers": {
            "access": {"class": "logging.FileHandler", "filename": access_log, "formatter": "plain"},
            "error": {"class": "logging.FileHandler", "filename": error_log, "formatter": "plain"},
        },
        "loggers": {
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"handlers": ["error"], "level": "INFO", "propagate": False},
        },
    }
    for handler in config["handlers"].values():
        handler["mode"] = mode
    return config


def status_of(pid):
    """(state letter, parent PID) from /proc, or None when there is no such process."""
    try:
        with open("/proc/{}/stat".format(pid)) as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def alive(pid):
    status = status_of(pid)
    return status is not None and status[0] != "Z"


class Uvicorn(object):
    """One `uvicorn` command serving tests/apps/asgi_app.py from a venv.

    mode: "single", "workers" (--workers N), "reload" (--reload, watching an empty directory), or
    "run" / "run-workers": a program calling uvicorn.run(log_config=dict[, workers=N]).
    `workdir` receives access.log, error.log, app.log and the output (stderr.log).
    """

    def __init__(
        self,
        venv,
        workdir,
        mode="single",
        workers=2,
        loop_http=None,
        env=None,
        extra_args=(),
        boot_timeout=60,
        log_mode="a",
    ):
        self.venv = venv
        self.log_mode = log_mode
        self.workdir = workdir
        self.mode = mode
        self.workers = workers if mode in ("workers", "run-workers") else 1
        self.loop_http = loop_http  # e.g. ("asyncio", "h11"); None: uvicorn's choice
        self.env = dict(env or {})
        self.extra_args = list(extra_args)
        self.boot_timeout = boot_timeout
        self.port = None
        self.proc = None
        self.access_log = os.path.join(workdir, "access.log")
        self.error_log = os.path.join(workdir, "error.log")
        self.app_log = os.path.join(workdir, "app.log")
        self.stderr_path = os.path.join(workdir, "stderr.log")
        self.config_path = os.path.join(workdir, "log_config.json")
        self.started_children = []

    # -- life cycle ----------------------------------------------------------------------
    def command(self):
        if self.mode.startswith("run"):  # uvicorn.run(...) from a program: "run" or "run-workers"
            cmd = [self.venv.python, os.path.join(APPS, "run_uvicorn.py"), str(self.port), self.config_path]
            return cmd + ([str(self.workers)] if self.mode == "run-workers" else [])
        cmd = [os.path.join(self.venv.bin, "uvicorn"), "asgi_app:app", "--app-dir", APPS]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--log-config", self.config_path]
        if self.loop_http:
            cmd += ["--loop", self.loop_http[0], "--http", self.loop_http[1]]
        if self.mode == "workers":
            cmd += ["--workers", str(self.workers)]
        elif self.mode == "reload":
            watched = os.path.join(self.workdir, "watched")
            os.makedirs(watched, exist_ok=True)
            cmd += ["--reload", "--reload-dir", watched]
        return cmd + self.extra_args

    def start(self):
        os.makedirs(self.workdir, exist_ok=True)
        self.port = free_port()
        with open(self.config_path, "w") as f:
            json.dump(log_config(self.access_log, self.error_log, self.log_mode), f)
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env.update({"APP_LOG": self.app_log, "PYTHONUNBUFFERED": "1"})
        env.update(self.env)
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._stderr,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(self._booted, self.boot_timeout, 0.05, "uvicorn to boot ({})".format(self.mode))
        except Timeout:
            self.stop()
            raise Timeout("uvicorn did not boot; its output:\n" + self.output()[-3000:]) from None
        self.started_children = self.worker_pids() if self.mode not in ("single", "run") else []
        return self

    def _booted(self):
        if self.proc.poll() is not None:
            raise AssertionError(
                "uvicorn exited with {}:\n{}".format(self.proc.returncode, self.output()[-3000:])
            )
        servers = self.server_pids()
        if len(servers) != self.workers:
            return False
        # Every server holds the app's log (opened when it imported the app) and catches
        # SIGUSR1 once it serves (patched); before that, a relayed USR1 is skipped.
        if not all(writes_to(pid, self.app_log) for pid in servers):
            return False
        try:
            return self.get("/boot")[0] == 200
        except OSError:
            return False

    def stop(self, timeout=15):
        """SIGTERM to the main process and its children, as systemd's KillMode=control-group
        (uvicorn <= 0.29's supervisor only waits for its workers: Ctrl+C reaches the whole
        process group); then to every child it had that outlived it (the controls' orphans)."""
        if self.proc is None:
            return
        known = set(self.started_children) | set(self.worker_pids() if self.proc.poll() is None else [])
        if self.proc.poll() is None:
            for pid in [self.proc.pid] + self.worker_pids():
                os.kill(pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        for pid in sorted(known):
            self.stop_orphan(pid, timeout)
        self._stderr.close()

    def stop_orphan(self, pid, timeout):
        """A child of ours that outlived the main process (the controls orphan them)."""
        status = status_of(pid)
        if status is None or status[0] == "Z" or status[1] == self.proc.pid:
            return
        if not self._was_ours(pid):
            return
        os.kill(pid, signal.SIGTERM)
        try:
            wait_for(
                lambda: status_of(pid) is None or status_of(pid)[0] == "Z", timeout, what="an orphan to exit"
            )
        except Timeout:
            os.kill(pid, signal.SIGKILL)

    def _was_ours(self, pid):
        """Still the same process: it holds a file of this test's directory."""
        return bool(writes_to(pid, self.app_log) or writes_to(pid, self.app_log + ".1")) or any(
            link.startswith(self.workdir) for link in _fd_links(pid)
        )

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- looking at it ------------------------------------------------------------------
    @property
    def main_pid(self):
        return self.proc.pid

    def worker_pids(self):
        """The main process's children that serve (they hold the app log's file)."""
        return [pid for pid in children(self.proc.pid) if _fd_links(pid) and self._serves(pid)]

    def _serves(self, pid):
        return any(link.startswith(self.workdir + os.sep + "app.log") for link in _fd_links(pid))

    def server_pids(self):
        """The processes that serve requests: the main one alone, or its children."""
        return [self.proc.pid] if self.mode in ("single", "run") else self.worker_pids()

    def log_holders(self):
        """Every process that should hold the new access.log after a rotation."""
        return [self.proc.pid] + (self.worker_pids() if self.mode not in ("single", "run") else [])

    def output(self):
        return _read(self.stderr_path)

    def get(self, path="/api/client?page_size=10&page=1", timeout=10):
        return http_get(self.port, path, timeout)

    def requests(self, n, tag):
        """n requests whose access and app lines carry `tag`; returns how many failed."""
        failed = 0
        for i in range(n):
            try:
                status, _ = self.get("/api/client?tag={}-{}".format(tag, i))
            except OSError:
                status = None
            failed += status != 200
        return failed

    # -- rotation, by PID only --------------------------------------------------------------
    def rename_logs(self):
        """logrotate's create mode, by hand, on the access, error and app logs."""
        for path in (self.access_log, self.error_log, self.app_log):
            os.rename(path, path + ".1")
            open(path, "w").close()

    def reopened(self):
        holders = self.log_holders()
        servers = self.server_pids()
        return (
            len(servers) == self.workers
            and all(writes_to(pid, self.access_log) for pid in holders)
            and all(writes_to(pid, self.app_log) for pid in servers)
        )

    def rotation_round(self, reopen_deadline=10):
        """10 requests, rename + USR1 to the main PID, wait for the reopen (or its deadline:
        the controls never reopen), 10 requests. Returns what the caller asserts on."""
        before = self.server_pids()
        failed = self.requests(10, "before")
        wait_for(lambda: count_lines(self.app_log, "tag=before") == 10, 5, what="the app log lines")
        self.rename_logs()
        os.kill(self.proc.pid, signal.SIGUSR1)
        try:
            wait_for(
                lambda: self.proc.poll() is not None or self.reopened(), reopen_deadline, what="the reopen"
            )
        except Timeout:
            pass
        failed += self.requests(10, "after")
        try:
            if not any(alive(pid) for pid in before):
                raise Timeout("no server left")
            wait_for(
                lambda: (
                    count_lines(self.app_log, "tag=after") + count_lines(self.app_log + ".1", "tag=after")
                    == 10
                ),
                5,
                what="the app log lines",
            )
        except Timeout:
            pass  # a dead server wrote none: the caller's assertions say so
        return {
            "before": before,
            "after": self.server_pids() if self.proc.poll() is None else [],
            "returncode": self.proc.poll(),
            "failed": failed,
            "new": count_lines(self.access_log, "tag=after"),
            "old": count_lines(self.access_log + ".1", "tag=after"),
            "app_new": count_lines(self.app_log, "tag=after"),
        }


def count_all(path, needle):
    """Lines containing `needle` in `path` and every rotated file of it (path.1, path.2, ...)."""
    import glob

    return sum(count_lines(p, needle) for p in [path] + glob.glob(path + ".*"))


def storm(server, rotations, seconds, max_requests=100000):
    """`rotations` renames + USR1 to the main PID, evenly over `seconds`, while a thread sends
    requests (bounded in count and by the storm's end). Returns the figures the tests assert."""
    import threading
    import time

    done = threading.Event()
    results = {"ok": 0, "failed": 0}

    def load():
        for i in range(max_requests):
            if done.is_set():
                return
            try:
                ok = server.get("/api/client?tag=s-{}-".format(i), timeout=10)[0] == 200
            except OSError:
                ok = False
            results["ok" if ok else "failed"] += 1

    before = server.server_pids()
    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    start = time.monotonic()
    for i in range(1, rotations + 1):
        for path in (server.access_log, server.error_log, server.app_log):
            os.rename(path, "{}.{}".format(path, i))
            open(path, "w").close()
        os.kill(server.proc.pid, signal.SIGUSR1)
        pause = start + seconds * i / rotations - time.monotonic()  # the storm's schedule
        if pause > 0:
            time.sleep(pause)
    elapsed = time.monotonic() - start
    done.set()
    thread.join(30)
    alive = server.proc.poll() is None
    if alive:
        wait_for(server.reopened, 10, what="the last reopen")
    final_failed = server.requests(10, "final") if alive else 10
    wait_for(lambda: count_lines(server.app_log, "tag=final") == 10 or not alive, 5, what="the final lines")
    logged = count_all(server.access_log, "tag=s-")
    outputs = server.output() + "".join(_read(p) for p in _rotated(server.error_log))
    return {
        "rotations": rotations,
        "seconds": round(elapsed, 1),
        "requests": results["ok"] + results["failed"],
        "failed": results["failed"] + final_failed,
        "lost": results["ok"] - logged,
        "app_lost": results["ok"] - count_all(server.app_log, "tag=s-"),
        "final_in_new_file": count_lines(server.access_log, "tag=final"),
        # each rotated file that got lines: the servers had reopened into it before the next rename
        "rotated_files_with_lines": sum(
            1 for i in range(1, rotations + 1) if count_lines("{}.{}".format(server.access_log, i), "tag=s-")
        ),
        "restarts": len(set(before) - set(server.server_pids() if alive else [])),
        "tracebacks": outputs.count("Traceback") + outputs.count("Logging error"),
        "alive": alive,
    }


def _rotated(path):
    import glob

    return [path] + glob.glob(path + ".*")


def _fd_links(pid):
    fd_dir = "/proc/{}/fd".format(pid)
    links = []
    try:
        for fd in os.listdir(fd_dir):
            try:
                links.append(os.readlink(os.path.join(fd_dir, fd)))
            except OSError:
                pass
    except OSError:
        pass
    return links


LOOPS = {"uvloop-httptools": ("uvloop", "httptools"), "asyncio-h11": ("asyncio", "h11")}
OFF = {"UVICORN_USR1_PATCH": "0"}


def family_venv(release):
    """The venv of a release tools/server_families.py tests (its Python and extra pins)."""
    from tools import server_families, venvs

    family = next(f for f in server_families.FAMILIES.values() if f.tested == release)
    return venvs.ensure(family.python, ["uvicorn[standard]=={}".format(release)] + list(family.extra))


def rotate(release, workdir, mode, loop="uvloop-httptools", env=None, deadline=10):
    """Start uvicorn, run one rotation_round, stop it: what happened, for tests and the table."""
    with Uvicorn(family_venv(release), workdir, mode=mode, loop_http=LOOPS[loop], env=env) as server:
        result = server.rotation_round(deadline)
        result["orphans"] = [
            pid for pid in server.started_children if status_of(pid) and status_of(pid)[1] != server.main_pid
        ]
        result["main_holds_old_file"] = result["returncode"] is None and writes_to(
            server.main_pid, server.access_log + ".1"
        )
        result["output"] = server.output() + _read(server.error_log)
    return result


def describe(result):
    """One table cell: what USR1 did."""
    if result["returncode"] is not None:
        what = "main process killed ({})".format(result["returncode"])
        if result["orphans"]:
            what += ", its {} children orphaned".format(len(result["orphans"]))
    elif result["after"] != result["before"]:
        what = "workers restarted"
    else:
        what = "lives, PIDs kept"
    return "{}; after: {} new / {} old file, {} failed".format(
        what, result["new"], result["old"], result["failed"]
    )


def table(releases=("0.14.0", "0.29.0", "0.54.0"), modes=("single", "workers", "reload")):
    """Markdown: control vs patched, one rename + USR1 to the main PID, uvloop/httptools."""
    import tempfile

    rows = ["| uvicorn | mode | UVICORN_USR1_PATCH=0 (control) | patched |", "|---|---|---|---|"]
    for release in releases:
        for mode in modes:
            cells = []
            for env, deadline in ((OFF, 3), (None, 10)):
                with tempfile.TemporaryDirectory(prefix="plain-table-") as workdir:
                    cells.append(describe(rotate(release, workdir, mode, env=env, deadline=deadline)))
            rows.append("| {} | {} | {} | {} |".format(release, mode, cells[0], cells[1]))
            print(rows[-1], file=sys.stderr)
    return "\n".join(rows)


if __name__ == "__main__":
    # python -m tools.uvicorn_run: the control vs patched table of COMPATIBILITY.md's plain section
    print(table())
