"""A user's subclass of the worker, as a gunicorn config would name it."""

from uvicorn.workers import UvicornWorker


class MyWorker(UvicornWorker):
    pass
