"""Log in a tight loop on the main thread while a rotator thread renames the file and sends
SIGUSR1 to this process; report `Logging error` tracebacks and lines written vs found.

    python reentrancy_probe.py {sync|deferred} {asyncio|uvloop} DIR [ROTATIONS]

Runs in a venv with real gunicorn: the reopen is gunicorn's own Worker.handle_usr1 ->
Logger.reopen_files on a real gunicorn access log. "sync" installs it as the signal handler
(what uvicorn >= 0.19 does); "deferred" installs uvicorn_usr1_patch's LoopReopen with a worker's reopen.
"""

import asyncio
import contextlib
import io
import json
import os
import signal
import sys
import threading
import time

from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.workers.base import Worker

MAX_SECONDS = 30  # a bound on the whole run, whatever happens


def main():
    mode, loop_name, workdir = sys.argv[1:4]
    rotations = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    path = os.path.join(workdir, "access.log")
    cfg = Config()
    cfg.set("accesslog", path)
    worker = Worker.__new__(Worker)  # only .log and handle_usr1 are used
    worker.log = Logger(cfg)
    access = worker.log.access_log

    if mode == "sync":
        signal.signal(signal.SIGUSR1, worker.handle_usr1)
    else:
        from uvicorn_usr1_patch.loop_reopen import LoopReopen
        from uvicorn_usr1_patch.worker_usr1 import WorkerReopen

        signal.signal(signal.SIGUSR1, LoopReopen(WorkerReopen(worker)))
    signal.siginterrupt(signal.SIGUSR1, False)

    renamed = []

    def rotate():
        for n in range(rotations):
            try:  # the previous reopen may not have created the new file yet
                os.rename(path, "{}.{}".format(path, n))
                renamed.append(n)
            except FileNotFoundError:
                pass
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(0.002)  # pacing of the storm, not a wait for a condition

    written = 0

    async def log_until_done(rotator):
        nonlocal written
        deadline = time.monotonic() + MAX_SECONDS
        while rotator.is_alive() and time.monotonic() < deadline:
            for _ in range(100):
                access.info("line %d", written)
                written += 1
            await asyncio.sleep(0)  # a turn of the loop, as between requests
        for _ in range(10):  # let a last deferred reopen run
            await asyncio.sleep(0)

    if loop_name == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    stderr = io.StringIO()
    rotator = threading.Thread(target=rotate)
    with contextlib.redirect_stderr(stderr):
        rotator.start()
        loop.run_until_complete(log_until_done(rotator))
        rotator.join()
    loop.close()
    for handler in access.handlers:
        handler.flush()

    found = 0
    for name in os.listdir(workdir):
        if name.startswith("access.log"):
            with open(os.path.join(workdir, name), "rb") as f:
                found += sum(1 for _ in f)
    text = stderr.getvalue()
    print(
        json.dumps(
            {
                "logging_errors": text.count("--- Logging error ---"),
                "reentrant": text.count("reentrant call"),
                "rotations": rotations,
                "renamed": len(renamed),
                "written": written,
                "found": found,
                "files": len([n for n in os.listdir(workdir) if n.startswith("access.log")]),
            }
        )
    )


if __name__ == "__main__":
    main()
