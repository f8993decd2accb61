"""A uvicorn.workers without a UvicornWorker: the hook must warn once and leave it."""


class SomeOtherWorker(object):
    pass
