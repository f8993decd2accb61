"""gunicorn config: each worker forks a child that sleeps, a copy of the worker in every respect
(command line, signal handlers): `check --pid WORKER` must still call it a worker, not a master."""

import os
import time


def post_worker_init(worker):
    if os.fork() == 0:
        time.sleep(600)  # the test kills it by PID; this bound only stops a leak
        os._exit(0)
