"""The worker side: what a patched UvicornWorker.init_signals installs in the worker process.

A Python signal handler runs between bytecodes of the main thread, also inside
BufferedWriter.flush while a log record is half written. Reopening log files there closes
the stream under the writer ("reentrant call inside BufferedWriter"). So the SIGUSR1
handler only schedules the worker's handle_usr1 on the running event loop, as gunicorn's
own ASGI worker does with loop.add_signal_handler; the reopen then runs between callbacks.
"""

import signal
import sys

# Default action "stop the process": a worker has no use for the master's TTIN/TTOU
# (add/remove a worker), and SIG_DFL would freeze it on a stray `kill -TTIN`.
_STOPPED_BY_DEFAULT = frozenset(
    getattr(signal, name) for name in ("SIGTTIN", "SIGTTOU", "SIGTSTP") if hasattr(signal, name)
)


def is_master_handler(handler):
    """True for a handler inherited from gunicorn's master: a method of an Arbiter."""
    arbiter = sys.modules.get("gunicorn.arbiter")
    owner = getattr(handler, "__self__", None)
    return arbiter is not None and owner is not None and isinstance(owner, arbiter.Arbiter)


def reset_inherited_handlers():
    """Give back to the default every signal whose handler is still the master's.

    Decided by what the handler is, not by the uvicorn release: on uvicorn <= 0.13.2 that is
    every one of the master's signals (including SIGCHLD, whose inherited handler swallowed
    subprocess exit codes, encode/uvicorn#894); on later releases it is only TTIN/TTOU.
    Returns the list of signal numbers changed.
    """
    changed = []
    for signum in range(1, signal.NSIG):
        try:
            handler = signal.getsignal(signum)
        except (ValueError, OSError):
            continue
        if is_master_handler(handler):
            signal.signal(signum, signal.SIG_IGN if signum in _STOPPED_BY_DEFAULT else signal.SIG_DFL)
            changed.append(signum)
    return changed


def _running_loop():
    """The event loop running in this thread, or None (asyncio and uvloop alike)."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    get = getattr(asyncio, "_get_running_loop", None) or asyncio.events._get_running_loop
    return get()


class DeferredReopen(object):
    """SIGUSR1 handler: schedule one worker.handle_usr1 on the running event loop.

    A burst of signals before the reopen has run coalesces into that one pending call; a
    signal arriving while the reopen runs schedules another (a rename may follow it). With
    no loop running (the worker is still booting), it reopens at once, as gunicorn does.
    """

    def __init__(self, worker):
        self.worker = worker
        self.pending_on = None  # the loop a reopen is scheduled on, if any

    def __call__(self, signum, frame):
        loop = _running_loop()
        if loop is None:
            self.worker.handle_usr1(signum, frame)
            return
        if self.pending_on is loop:
            return
        self.pending_on = loop
        try:
            loop.call_soon_threadsafe(self.reopen)
        except RuntimeError:  # the loop is closing: no callback will ever run
            self.pending_on = None
            self.worker.handle_usr1(signum, frame)

    def reopen(self):
        self.pending_on = None
        self.worker.handle_usr1(signal.SIGUSR1, None)

    def __repr__(self):
        return "<uvicorn_usr1_patch DeferredReopen for {!r}>".format(self.worker)


def install(worker):
    """Reset the master's leftover handlers and install the loop-safe SIGUSR1 handler."""
    reset_inherited_handlers()
    signal.signal(signal.SIGUSR1, DeferredReopen(worker))
    # As gunicorn's own workers: don't let the signal break a system call in a request.
    signal.siginterrupt(signal.SIGUSR1, False)
