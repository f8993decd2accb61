"""UvicornWorker as uvicorn 0.4-0.13 had it (init_signals does nothing), counting calls so a test
sees the original ran exactly once under the patch."""

from fake_gunicorn_base import Worker


class UvicornWorker(Worker):
    calls = 0

    def init_signals(self):
        UvicornWorker.calls += 1
