"""A user's own worker class, as deployments define them: it must be patched through its base."""

from uvicorn.workers import UvicornWorker


class AppWorker(UvicornWorker):
    CONFIG_KWARGS = {"loop": "asyncio", "http": "h11"}
