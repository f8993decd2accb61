"""Plain uvicorn's server (`uvicorn app:app`, `uvicorn.run`, `Server.serve`, and each worker of
`--workers`/`--reload`): reopen every log file on SIGUSR1, from the event loop.

uvicorn has no SIGUSR1 handling of its own: the signal keeps its default action and kills
the server, so logrotate's `postrotate kill -USR1` is an outage (issue 11; hypercorn users
report the same, pgjones/hypercorn#196). Server.serve is wrapped: while it runs, SIGUSR1's
handler only schedules one reopen (atomic_reopen.reopen_log_files: every logging.FileHandler,
open first, swap under the lock, a failure keeps the old file) on the serving loop. It never
reopens inside the signal handler, which can run inside BufferedWriter.flush with a log line
half written ("reentrant call", encode/uvicorn#1565); a burst of signals before the reopen
has run coalesces into it.

Decided by what the class is, not by the release: an async Server.serve and uvicorn's own
signal set-up (install_signal_handlers up to 0.28, capture_signals from 0.29), which leaves
SIGUSR1 alone. Anything else: not patched, one warning.
"""

import functools
import inspect
import logging
import signal
import threading

from uvicorn_usr1_patch import warn_skip
from uvicorn_usr1_patch.atomic_reopen import reopen_log_files

SIGNAL_SETUPS = ("install_signal_handlers", "capture_signals")
_patched = []  # classes patched in this process, for unpatch_all()


class LoopReopen(object):
    """SIGUSR1 handler: schedule one reopen on the serving loop; never reopen here."""

    def __init__(self, loop, previous):
        self.loop = loop
        self.previous = previous  # restored when the last Server on this loop is done
        self.servers = 1  # Servers serving on this loop (asyncio.gather of several is common)
        self.pending = False  # set only once the call is scheduled

    def __call__(self, signum, frame):
        if self.pending:
            return  # coalesced into the reopen already scheduled
        try:
            self.loop.call_soon_threadsafe(self.reopen)
        except Exception:  # the loop is closed (the server is exiting), or anything else:
            return  # never an exception out of the signal handler into the serving code
        self.pending = True

    def reopen(self):
        # A signal from here on schedules another reopen: a rename may follow this one.
        self.pending = False
        failures = reopen_log_files()
        logging.getLogger("uvicorn.error").info(
            "Received SIGUSR1, reopened the log files%s.",
            " ({} could not be reopened)".format(len(failures)) if failures else "",
        )

    def __repr__(self):
        return "<uvicorn_usr1_patch LoopReopen on {!r}>".format(self.loop)


def install_usr1(loop):
    """Take SIGUSR1 for `loop`, unless someone else handles it (gunicorn's worker, the app).

    Returns our handler (release it when serve ends), or None when SIGUSR1 was left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        return None  # only the main thread may set handlers; uvicorn skips its own there too
    current = signal.getsignal(signal.SIGUSR1)
    if isinstance(current, LoopReopen) and current.loop is loop:
        current.servers += 1  # another Server on the same loop
        return current
    if current != signal.SIG_DFL:
        return None
    handler = LoopReopen(loop, current)
    signal.signal(signal.SIGUSR1, handler)
    # As gunicorn's workers: the signal does not break a system call in a C extension.
    signal.siginterrupt(signal.SIGUSR1, False)
    return handler


def release_usr1(handler):
    """The Server is done: restore what SIGUSR1 had once no other Server on the loop serves
    (as uvicorn's capture_signals restores its own handlers)."""
    if handler is None:
        return
    handler.servers -= 1
    if handler.servers == 0 and signal.getsignal(signal.SIGUSR1) is handler:
        signal.signal(signal.SIGUSR1, handler.previous)


def wrap_serve(original):
    @functools.wraps(original)
    async def serve(self, *args, **kwargs):
        import asyncio

        handler = None
        try:
            handler = install_usr1(asyncio.get_event_loop())  # the running loop
        except Exception as exc:
            warn_skip("the SIGUSR1 handler of uvicorn's Server", "{}: {}".format(type(exc).__name__, exc))
        try:
            return await original(self, *args, **kwargs)
        finally:
            release_usr1(handler)

    serve.uvicorn_usr1_patch = True
    return serve


def is_patched(cls):
    return getattr(vars(cls).get("serve"), "uvicorn_usr1_patch", False)


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
    serve = vars(cls).get("serve")
    if not inspect.iscoroutinefunction(serve):
        warn_skip(name, "it has no `async def serve`")
        return False
    if not any(callable(vars(cls).get(setup)) for setup in SIGNAL_SETUPS):
        warn_skip(name, "it sets up its signals with neither of {}".format(", ".join(SIGNAL_SETUPS)))
        return False
    handled = getattr(inspect.getmodule(cls), "HANDLED_SIGNALS", ())
    if signal.SIGUSR1 in tuple(handled):
        warn_skip(name, "uvicorn handles SIGUSR1 itself here")
        return False
    cls.serve = wrap_serve(serve)
    _patched.append(cls)
    return True


def unpatch_all():
    for cls in list(_patched):
        if is_patched(cls):
            cls.serve = vars(cls)["serve"].__wrapped__
        _patched.remove(cls)
