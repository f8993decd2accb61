"""Run a real gunicorn master with uvicorn workers on 127.0.0.1, and look at it from outside.

Everything is bounded: waits poll a condition until a deadline, requests have timeouts,
and processes are stopped by the PIDs this module started or read from /proc.
"""

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from uvicorn_usr1_patch.procfs import children, open_inodes, writes_to  # noqa: F401 (this module's API)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS = os.path.join(REPO, "tests", "apps")


class Timeout(AssertionError):
    pass


def wait_for(condition, timeout, interval=0.02, what="condition"):
    """Poll `condition()` until it returns a true value, or raise Timeout after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Timeout("timed out after {:.1f}s waiting for {}".format(timeout, what))
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def http_get(port, path, timeout=10):
    """(status, body) of one GET on 127.0.0.1:port, on a connection of its own."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Gunicorn(object):
    """One gunicorn master serving tests/apps/asgi_app.py from a venv.

    `workdir` receives access.log, error.log, app.log, gunicorn.pid and the master's
    stdout/stderr (stderr.log). `env` is added to the environment (e.g. UVICORN_USR1_PATCH=0).
    """

    def __init__(
        self,
        venv,
        workdir,
        worker_class="uvicorn.workers.UvicornWorker",
        workers=2,
        env=None,
        app="asgi_app:app",
        extra_args=(),
        boot_timeout=60,
        python_m=False,
    ):
        self.venv = venv
        self.workdir = workdir
        self.worker_class = worker_class
        self.workers = workers
        self.env = dict(env or {})
        self.app = app
        self.extra_args = list(extra_args)
        self.boot_timeout = boot_timeout
        self.python_m = python_m  # `python -m gunicorn` (gunicorn >= 20.1) instead of bin/gunicorn
        self.port = None
        self.proc = None
        self.access_log = os.path.join(workdir, "access.log")
        self.error_log = os.path.join(workdir, "error.log")
        self.app_log = os.path.join(workdir, "app.log")
        self.pidfile = os.path.join(workdir, "gunicorn.pid")
        self.stderr_path = os.path.join(workdir, "stderr.log")

    # -- life cycle ----------------------------------------------------------------------
    def start(self):
        os.makedirs(self.workdir, exist_ok=True)
        self.port = free_port()
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env.update({"APP_LOG": self.app_log, "PYTHONUNBUFFERED": "1"})
        env.update(self.env)
        if self.python_m:
            cmd = [self.venv.python, "-m", "gunicorn"]
        else:
            cmd = [os.path.join(self.venv.bin, "gunicorn")]
        cmd += ["-w", str(self.workers), "-b", "127.0.0.1:{}".format(self.port)]
        if self.worker_class:  # None: the worker class comes from a config file in extra_args
            cmd += ["-k", self.worker_class]
        cmd += ["--chdir", APPS, "--pid", self.pidfile, "--graceful-timeout", "5"]
        cmd += ["--access-logfile", self.access_log, "--error-logfile", self.error_log]
        cmd += self.extra_args + [self.app]
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._stderr,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(
                self._booted, self.boot_timeout, 0.05, "gunicorn to boot {} workers".format(self.workers)
            )
        except Timeout:
            self.stop()
            raise Timeout("gunicorn did not boot; its output:\n" + self.output()[-3000:]) from None
        return self

    def _booted(self):
        if self.proc.poll() is not None:
            raise AssertionError(
                "gunicorn exited with {}:\n{}".format(self.proc.returncode, self.output()[-3000:])
            )
        errors = _read(self.error_log)
        if "Exception in worker process" in errors or "Worker failed to boot" in errors:
            self.stop()
            raise AssertionError("a worker failed to boot:\n" + errors[-3000:])
        if len(self.worker_pids()) != self.workers:
            return False
        # Every worker holds the app's log, opened when it imported the app: it is past
        # init_signals (gunicorn calls it before load_wsgi). Until then a USR1 reaches the
        # handler inherited from the master and is dropped, patched or not.
        if not self.workers_write_to(self.app_log):
            return False
        try:
            return self.get("/boot")[0] in (200, 404)  # any answer from the app will do
        except OSError:
            return False

    def stop(self, timeout=15):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            workers = self.worker_pids()
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                for pid in workers + [self.proc.pid]:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                self.proc.wait(timeout)
        self._stderr.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- looking at it ------------------------------------------------------------------
    @property
    def master_pid(self):
        return self.proc.pid

    def worker_pids(self):
        return children(self.proc.pid)

    def output(self):
        """The master's stdout/stderr (tracebacks of `Logging error` land here)."""
        return _read(self.stderr_path)

    def get(self, path="/api/client?page_size=10&page=1", timeout=10):
        return http_get(self.port, path, timeout)

    def requests(self, n, tag):
        """Send n requests whose access lines carry `tag`; all must answer 200."""
        for i in range(n):
            status, _ = self.get("/api/client?page_size=10&page=1&tag={}-{}".format(tag, i))
            assert status == 200, status

    # -- signals, by PID only -----------------------------------------------------------
    def usr1_master(self):
        os.kill(self.proc.pid, signal.SIGUSR1)

    def usr1_everyone(self):
        """What `killall -USR1 gunicorn` does, done by PID: the master and every worker."""
        for pid in [self.proc.pid] + self.worker_pids():
            os.kill(pid, signal.SIGUSR1)

    def rename_logs_and_usr1(self):
        """logrotate's create mode, by hand, on the access and app logs; USR1 to the master."""
        for path in (self.access_log, self.app_log):
            os.rename(path, path + ".1")
            open(path, "w").close()
        self.usr1_master()

    def rotation_round(self, reopen_deadline=10):
        """10 requests, rename + USR1, wait for the reopen, 10 requests; PIDs before, after.

        A worker that never reopens (the controls) just makes the wait run out: what the
        caller asserts about the files tells what happened.
        """
        before = self.worker_pids()
        self.requests(10, "before")
        wait_for(lambda: count_lines(self.app_log, "tag=before") == 10, 5, what="the app log lines")
        self.rename_logs_and_usr1()
        try:
            wait_for(
                lambda: self.workers_write_to(self.access_log) and self.workers_write_to(self.app_log),
                reopen_deadline,
                what="every worker to reopen",
            )
        except Timeout:
            pass
        self.requests(10, "after")
        wait_for(
            lambda: (
                count_lines(self.app_log, "tag=after") + count_lines(self.app_log + ".1", "tag=after") == 10
            ),
            5,
            what="the app log lines",
        )
        return before, self.worker_pids()

    def workers_write_to(self, path):
        pids = self.worker_pids()
        return len(pids) == self.workers and all(writes_to(pid, path) for pid in pids)


class Load(object):
    """`threads` clients sending tagged requests back to back, bounded in count and time.

    `path_for(tag)` is the URL of the request tagged `tag` (a tag is "TAG-THREAD-N"); `ok` and
    `failed` collect (tag, status or error). start() + stop()/join() in threads, or run_here().
    """

    def __init__(self, gunicorn, path_for, tag, threads=2, max_requests=20000, max_seconds=60.0):
        self.gunicorn = gunicorn
        self.path_for = path_for
        self.tag = tag
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
                status, _ = self.gunicorn.get(self.path_for(tag), timeout=15)
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

    def run_here(self):
        """One client, in the calling thread."""
        self._run(0)
        return self


def count_lines(path, needle):
    """Lines of `path` (plain or gzip) containing `needle`; 0 when the file is missing."""
    import gzip

    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            return sum(1 for line in f if needle.encode() in line)
    except OSError:
        return 0


if __name__ == "__main__":
    sys.exit("this module is a library for tests, bench/ and the demo")
