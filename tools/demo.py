"""make demo: the reported scenario, with the patch off and then on.

The report's stack (tools/stacks.py REPORT): Python 3.8, gunicorn 20.0.4, uvicorn[standard]
0.13.1 on uvloop + httptools, fastapi 0.62.0; two workers on 127.0.0.1.
Ten requests, then the real logrotate binary with the report's configuration (create mode,
compress, nodelaycompress, dateext...), whose postrotate sends USR1 to the master's PID from
gunicorn's --pid file; then ten more requests. Run once with UVICORN_USR1_PATCH=0 and once
with the patch, and print what happened to the lines.
"""

import os
import sys
import tempfile

from tools import venvs
from tools.gunicorn_run import Gunicorn, Timeout, count_lines, open_inodes, wait_for
from tools.logrotate_run import Logrotate
from tools.stacks import REPORT


def run_once(venv, workdir, patch_on):
    logdir = os.path.join(workdir, "log")
    os.makedirs(logdir)
    env = {} if patch_on else {"UVICORN_USR1_PATCH": "0"}
    server = Gunicorn(venv, workdir, env=env, app="fastapi_app:app")
    server.access_log = os.path.join(logdir, "access.log")  # the report's --access-logfile log/access.log
    server.app_log = os.path.join(logdir, "main.log")
    # The report's stanza (tools/logrotate_run.py), its postrotate signalling the master's PID.
    logrotate = Logrotate(workdir, [server.access_log, server.app_log], server.pidfile, mode="report")
    with server:
        pids_before = server.worker_pids()
        server.requests(10, "before")
        logrotate.rotate()
        try:
            wait_for(lambda: server.workers_write_to(server.access_log), 10, what="the workers to reopen")
        except Timeout:
            pass  # the bug: they never do
        server.requests(10, "after")
        # Lines written into the rotated file after logrotate compressed and unlinked it are
        # still readable through the workers' open descriptors, until the workers stop.
        into_deleted, seen = 0, set()
        for pid in server.worker_pids():
            for fd, (inode, link) in open_inodes(pid, logdir).items():
                if "access.log" in link and link.endswith("(deleted)") and inode not in seen:
                    seen.add(inode)  # both workers share the one deleted file
                    into_deleted += count_lines("/proc/{}/fd/{}".format(pid, fd), "tag=after")
        pids_after = server.worker_pids()
    gz = [p for p in logrotate.rotated(server.access_log) if p.endswith(".gz")]
    return {
        "new access.log: lines after rotation": count_lines(server.access_log, "tag=after"),
        "rotated access.log-<date>.gz: lines": sum(count_lines(p, "GET /api/client") for p in gz),
        "lines written into the deleted rotated file": into_deleted,
        "new main.log (app log): lines after rotation": count_lines(server.app_log, "tag=after"),
        "worker PIDs before -> after": "{} -> {}".format(pids_before, pids_after),
        "Logging error tracebacks": server.output().count("Logging error"),
    }


def main():
    try:
        venvs.require_python(REPORT.python)
    except LookupError as exc:
        sys.exit("demo: {}".format(exc))
    print(
        "demo: preparing a Python {} venv with {} ...".format(REPORT.python, " ".join(REPORT.requirements)),
        flush=True,
    )
    venv = venvs.ensure(REPORT.python, REPORT.requirements)
    versions = venv.versions("gunicorn", "uvicorn", "uvloop", "httptools", "fastapi", "uvicorn-usr1-patch")
    print("demo: " + ", ".join("{} {}".format(k, v) for k, v in versions.items()), flush=True)
    results = {}
    for label, patch_on in (("patch off (UVICORN_USR1_PATCH=0)", False), ("patch on", True)):
        with tempfile.TemporaryDirectory(prefix="usr1-demo-") as workdir:
            print("demo: {}: 10 requests, logrotate -f, 10 requests ...".format(label), flush=True)
            results[label] = run_once(venv, workdir, patch_on)
    labels = list(results)
    rows = list(results[labels[0]])
    width = max(len(r) for r in rows)
    print()
    print("| {} | {} | {} |".format("".ljust(width), labels[0], labels[1]))
    print("|{}|{}|{}|".format("-" * (width + 2), "-" * (len(labels[0]) + 2), "-" * (len(labels[1]) + 2)))
    for row in rows:
        print(
            "| {} | {} | {} |".format(
                row.ljust(width),
                str(results[labels[0]][row]).ljust(len(labels[0])),
                str(results[labels[1]][row]).ljust(len(labels[1])),
            )
        )
    off, on = results[labels[0]], results[labels[1]]
    key = rows[0]
    fixed = off[key] == 0 and on[key] == 10
    print()
    print(
        "demo: the bug reproduced with the patch off and fixed with it on"
        if fixed
        else "demo: UNEXPECTED result, see the table"
    )
    return 0 if fixed else 1


if __name__ == "__main__":
    sys.exit(main())
