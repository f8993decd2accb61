"""The signals other than SIGUSR1 in a patched worker: what gunicorn's own workers have.

uvicorn's init_signals leaves the master's Python handlers in the worker (0.4.0-0.13.2: the
inherited SIGCHLD handler swallows subprocess exit codes, encode/uvicorn#894) or resets them
to SIG_DFL (0.13.3-0.18.3: the master's quick stop, SIGQUIT, and its timeout kill, SIGABRT,
dump core, encode/uvicorn#1116, benoitc/gunicorn#2604). Decided by what each handler is, not
by the release:
- QUIT, INT: a quick exit (QuickExit: uvicorn's quick shutdown, gunicorn's handle_quit behind it);
- ABRT: gunicorn's handle_abort;
- TTIN, TTOU (the master's add/remove-a-worker signals, whose default action stops the
  worker): a handler that does nothing (unlike SIG_IGN, not inherited by programs the app execs);
- any other handler inherited from the master: the default.
And uvicorn 0.20+ runs SIGQUIT through its loop into gunicorn's handle_exit, which only sets
worker.alive, which uvicorn never reads (encode/uvicorn#1710): the worker stays until the
master's SIGKILL; watch_quit_from_the_loop makes it a quick exit.

The package only: the diffs (patches/) change SIGUSR1 and nothing else.
"""

import signal
import sys

from uvicorn_usr1_patch.atomic_reopen import write_stderr
from uvicorn_usr1_patch.loop_reopen import running_loop

WORKER_METHODS = {"SIGQUIT": "handle_quit", "SIGINT": "handle_quit", "SIGABRT": "handle_abort"}
QUICK_EXIT = ("SIGQUIT", "SIGINT")
NOTHING_TO_DO = ("SIGTTIN", "SIGTTOU")


def do_nothing(signum, frame):
    """SIGTTIN/SIGTTOU in a worker: only the master adds or removes workers."""


class QuickExit(object):
    """SIGQUIT/SIGINT in a worker, the master's quick stop: uvicorn's quick shutdown.

    gunicorn's own handle_quit raises SystemExit inside the signal handler. Under uvloop the
    handler may run inside a transport callback, which reports the exception ("Fatal error on
    transport") and carries on: the worker stays (tests/test_faults.py, uvicorn 0.18.3). So
    with a running loop the exit is scheduled on it, and uvicorn's Server (worker.server)
    gets should_exit and force_exit (a second Ctrl-C: no waiting for open connections).
    With no loop, or a Server not started yet, gunicorn's handle_quit does it: a stopped
    uvicorn that never started exits with WORKER_BOOT_ERROR and the master would halt."""

    def __init__(self, worker):
        self.worker = worker

    def __call__(self, signum, frame):
        loop = running_loop()
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self.quick_exit, signum)  # as LoopReopen does
                return
            except Exception:  # a loop closing under us: gunicorn's own way, below
                pass
        self.worker.handle_quit(signum, frame)

    def quick_exit(self, signum):
        server = getattr(self.worker, "server", None)
        if server is None or not server.started:
            self.worker.handle_quit(signum, None)
            return
        self.worker.alive = False
        try:
            self.worker.cfg.worker_int(self.worker)  # gunicorn's hook, as in its handle_quit
        except Exception as exc:
            write_stderr("uvicorn-usr1-patch: the worker_int hook raised {!r}".format(exc))
        server.should_exit = True
        server.force_exit = True


def is_master_handler(handler):
    """True for a handler inherited from gunicorn's master: a method of an Arbiter."""
    arbiter = sys.modules.get("gunicorn.arbiter")
    owner = getattr(handler, "__self__", None)
    return arbiter is not None and owner is not None and isinstance(owner, arbiter.Arbiter)


def reset_worker_signals(worker):
    """Give each signal still set by the master, or left at a harmful default, its worker
    handler; leave uvicorn's own and the application's."""
    for signum in signal.Signals:
        if signum == signal.SIGUSR1:
            continue  # worker_usr1's
        handler = signal.getsignal(signum)
        inherited = is_master_handler(handler)
        if not inherited and handler != signal.SIG_DFL:
            continue
        method = getattr(worker, WORKER_METHODS.get(signum.name, ""), None)
        if signum.name in NOTHING_TO_DO:
            new = do_nothing
        elif callable(method):
            new = QuickExit(worker) if signum.name in QUICK_EXIT else method
        elif inherited:
            new = signal.SIG_DFL
        else:
            continue
        signal.signal(signum, new)


def watch_quit_from_the_loop(worker):
    """uvicorn 0.20+: its loop's SIGQUIT handler, worker.handle_exit, also stops uvicorn."""
    original = getattr(worker, "handle_exit", None)
    if not callable(original):
        return
    quick = QuickExit(worker)

    def handle_exit(sig, frame):
        original(sig, frame)
        if sig == signal.SIGQUIT:
            quick.quick_exit(sig)

    worker.handle_exit = handle_exit


def install_worker_signals(worker):
    reset_worker_signals(worker)
    watch_quit_from_the_loop(worker)
