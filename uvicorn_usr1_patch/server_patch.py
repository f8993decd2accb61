"""uvicorn's Server.serve, wrapped: the first safe point for SIGUSR1, on the serving loop.

Plain uvicorn (`uvicorn app:app`, `uvicorn.run`, `Server.serve`, each child of `--workers`
and `--reload`) has no SIGUSR1 handling: the default action kills the server, so logrotate's
`postrotate kill -USR1` is an outage (hypercorn users report the same: pgjones/hypercorn#196).
While serve() runs, SIGUSR1 is a LoopReopen whose reopen is atomic_reopen's, for every log
file of the process; when the last Server serving is done, the previous handler is back.

In a gunicorn worker, SIGUSR1 already is the worker's LoopReopen (worker_usr1): serve()
starting is its first safe point, and the Server becomes `worker.server`, which the
hand-over and the quick exit stop.

Decided by what the class is, not by the release: an async Server.serve and uvicorn's own
signal set-up (install_signal_handlers up to 0.28, capture_signals from 0.29), which leaves
SIGUSR1 alone. Anything else: not patched, one warning.
"""

import inspect
import logging
import signal
import threading

from uvicorn_usr1_patch import patching, warn_skip
from uvicorn_usr1_patch.atomic_reopen import reopen_log_files
from uvicorn_usr1_patch.loop_reopen import LoopReopen
from uvicorn_usr1_patch.worker_usr1 import WorkerReopen

SIGNAL_SETUPS = ("install_signal_handlers", "capture_signals")


class ServersReopen(object):
    """What LoopReopen runs in plain uvicorn: reopen every log file of the process."""

    def __init__(self, previous):
        self.previous = previous  # SIGUSR1's handler before the first Server took it
        self.servers = 0  # Servers serving (asyncio.gather of several on one loop is common)

    def __call__(self):
        failures = reopen_log_files()
        logging.getLogger("uvicorn.error").info(
            "Received SIGUSR1, reopened the log files%s.",
            " ({} could not be reopened)".format(len(failures)) if failures else "",
        )


def take_usr1(server):
    """serve() is starting on its loop. Returns the handler to release when it ends, or None."""
    if threading.current_thread() is not threading.main_thread():
        return None  # only the main thread may set handlers; uvicorn skips its own there too
    current = signal.getsignal(signal.SIGUSR1)
    if not isinstance(current, LoopReopen):
        if current != signal.SIG_DFL:
            return None  # the application handles SIGUSR1 itself
        current = LoopReopen(ServersReopen(current))
        signal.signal(signal.SIGUSR1, current)
        signal.siginterrupt(signal.SIGUSR1, False)  # as gunicorn's workers: no EINTR
    if isinstance(current.reopen, WorkerReopen):
        current.reopen.worker.server = server
    current.safe_point()
    if not isinstance(current.reopen, ServersReopen):
        return None
    current.reopen.servers += 1
    return current


def release_usr1(handler):
    """A Server is done: the previous handler is back once no other Server serves."""
    if handler is None:
        return
    handler.reopen.servers -= 1
    if handler.reopen.servers == 0 and signal.getsignal(signal.SIGUSR1) is handler:
        signal.signal(signal.SIGUSR1, handler.reopen.previous)


def wrap_serve(original):
    async def serve(self, *args, **kwargs):
        handler = None
        try:
            handler = take_usr1(self)
        except Exception as exc:
            warn_skip("the SIGUSR1 handler of uvicorn's Server", "{}: {}".format(type(exc).__name__, exc))
        try:
            return await original(self, *args, **kwargs)
        finally:
            release_usr1(handler)

    return serve


def is_patched(cls):
    return patching.is_patched(cls, "serve")


def patch_module(module):
    """Patch module.Server (uvicorn.server); True when patched."""
    if not hasattr(signal, "SIGUSR1"):
        warn_skip(module.__name__, "this platform has no SIGUSR1")
        return False
    cls = getattr(module, "Server", None)
    if not isinstance(cls, type):
        warn_skip(module.__name__, "it defines no Server class")
        return False
    return patch_class(cls)


def patch_class(cls):
    if is_patched(cls):
        return True
    name = "{}.{}".format(cls.__module__, cls.__name__)
    if not inspect.iscoroutinefunction(vars(cls).get("serve")):
        warn_skip(name, "it has no `async def serve`")
        return False
    if not any(callable(vars(cls).get(setup)) for setup in SIGNAL_SETUPS):
        warn_skip(name, "it sets up its signals with neither of {}".format(", ".join(SIGNAL_SETUPS)))
        return False
    if signal.SIGUSR1 in tuple(getattr(inspect.getmodule(cls), "HANDLED_SIGNALS", ())):
        warn_skip(name, "uvicorn handles SIGUSR1 itself here")
        return False
    patching.replace(cls, "serve", wrap_serve)
    return True
