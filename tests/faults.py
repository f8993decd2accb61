"""Harness for issue 9's fault tests: gunicorn as root with `--user nobody`, log files that
cannot be reopened, two bounded clients whose every request carries a unique id.

Layout of a run (a directory every user can traverse; pytest's tmp_path is 0700):
  apps/  a copy of tests/apps (root's, read-only for the workers)
  logs/  gunicorn's access.log and error.log: root's directory, 0755, so `nobody` cannot
         create files there (gunicorn chowns the two files it creates to --user at start)
  app/   the application's own app.log: nobody's directory
  run/   pid file and the master's stdout/stderr
"""

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from tools.gunicorn_run import APPS, Gunicorn, wait_for

NOBODY = ["--user", "nobody", "--group", "nogroup"]
# Clients' ids are c<client>-<seq>; bench/loadclient.py's are <connection>-<seq>
ID = re.compile(r"[?&]id=(c?[0-9]+-[0-9]+)")
LOADCLIENT = os.path.join(os.path.dirname(APPS), "..", "bench", "loadclient.py")


class Layout(object):
    def __init__(self, nobody=True):
        self.base = tempfile.mkdtemp(prefix="uvicorn-usr1-faults-")
        os.chmod(self.base, 0o755)
        self.apps = os.path.join(self.base, "apps")
        shutil.copytree(APPS, self.apps, ignore=shutil.ignore_patterns("__pycache__"))
        self.logs = os.path.join(self.base, "logs")
        self.app = os.path.join(self.base, "app")
        self.run = os.path.join(self.base, "run")
        for path in (self.logs, self.app, self.run):
            os.mkdir(path, 0o755)
        if nobody:
            os.chown(self.app, 65534, 65534)

    def remove(self):
        shutil.rmtree(self.base, ignore_errors=True)


def server(venv, layout, nobody=True, env=None, workers=2, extra_args=()):
    """A Gunicorn (tools/gunicorn_run.py) on the layout, as root with --user nobody."""
    full_env = dict(venv.env)
    full_env.update(env or {})
    args = (NOBODY if nobody else []) + ["--chdir", layout.apps] + list(extra_args)
    g = Gunicorn(venv, layout.run, workers=workers, env=full_env, extra_args=args)
    g.access_log = os.path.join(layout.logs, "access.log")
    g.error_log = os.path.join(layout.logs, "error.log")
    g.app_log = os.path.join(layout.app, "app.log")
    return g


def rotate_to_wrong_owner(paths):
    """logrotate's create mode with a `create 0600 root root` line: rename, then a new empty
    file root:root 0600 that only root can open."""
    for path in paths:
        os.rename(path, path + ".1")
    create_wrong_owner(paths)


def create_wrong_owner(paths):
    for path in paths:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchown(fd, 0, 0)
        os.close(fd)


class Clients(object):
    """`n` client threads sending GET /?id=c<k>-<seq> back to back, a new connection per
    request (as a reverse proxy without keep-alive), each bounded by `limit` requests and
    the `seconds` deadline. Results: {id: status} (an exception's class name when no answer)."""

    def __init__(self, port, n=2, seconds=60, limit=5000, timeout=15):
        self.port, self.n, self.limit, self.timeout = port, n, limit, timeout
        self.deadline = time.monotonic() + seconds
        self.results = {}
        self.failed_at = {}  # id: when it failed (time.monotonic())
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(k,), daemon=True) for k in range(n)]

    def _run(self, k):
        for seq in range(self.limit):
            if self.stopping.is_set() or time.monotonic() > self.deadline:
                return
            rid = "c{}-{}".format(k, seq)
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                conn.request("GET", "/api/client?id={}".format(rid))
                response = conn.getresponse()
                response.read()
                self.results[rid] = response.status
            except Exception as exc:
                self.results[rid] = type(exc).__name__
                self.failed_at[rid] = time.monotonic()
            finally:
                conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def sent(self):
        return len(self.results)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(self.timeout + 5)

    def __exit__(self, *exc):
        self.stop()

    def answered(self):
        # a copy first (one C call): the client threads go on adding to results meanwhile
        return sorted(rid for rid, status in dict(self.results).items() if status == 200)

    def failed(self):
        return {rid: status for rid, status in dict(self.results).items() if status != 200}


class KeepAliveLoad(object):
    """bench/loadclient.py as the clients: `connections` keep-alive connections at full
    speed for `seconds` (bounded by the script itself), same results as Clients."""

    def __init__(self, port, seconds, workdir, connections=8):
        self.seconds = seconds
        self.out = os.path.join(workdir, "loadclient.json")
        self.cmd = [sys.executable, LOADCLIENT, str(port), str(seconds), str(connections), self.out]
        self.results = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd)
        return self

    def __exit__(self, *exc):
        self.proc.wait(self.seconds + 60)
        with open(self.out) as f:
            self.results = json.load(f)

    def sent(self):
        return len(self.results["ok"]) + len(self.results["failed"])

    def answered(self):
        return sorted(self.results["ok"])

    def failed(self):
        return {rid: "failed" for rid in self.results["failed"]}


def ids_in(path):
    """{request id: number of lines} in one file."""
    counts = {}
    try:
        with open(path, "rb") as f:
            for line in f:
                m = ID.search(line.decode("utf-8", "replace"))
                if m:
                    counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    except OSError:
        pass
    return counts


def line_figures(clients, new, old):
    """answered, failed, lost (answered but in neither file), duplicated, lines in new/old."""
    in_new, in_old = ids_in(new), ids_in(old)
    answered = clients.answered()
    return {
        "sent": clients.sent(),
        "answered": len(answered),
        "failed": len(clients.failed()),
        "lost": sum(1 for rid in answered if rid not in in_new and rid not in in_old),
        "duplicated": sum(1 for rid in answered if in_new.get(rid, 0) + in_old.get(rid, 0) > 1),
        "new file": sum(in_new.values()),
        "old file": sum(in_old.values()),
    }


def wait_for_requests(clients, more, timeout=30):
    """Until the clients have had `more` further requests answered (bounded)."""
    target = len(clients.answered()) + more
    wait_for(lambda: len(clients.answered()) >= target, timeout, what="{} more answers".format(more))


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def stop_orphans(pids, timeout=15):
    """SIGTERM the workers (PIDs read as children of our master) still alive after their
    master died, and wait for them; returns how many there were."""
    import signal

    left = [pid for pid in pids if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not any(alive(pid) for pid in left), timeout, what="the orphaned workers to exit")
    return len(left)
