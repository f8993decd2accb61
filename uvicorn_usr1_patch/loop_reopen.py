"""The one SIGUSR1 primitive, for gunicorn's worker and plain uvicorn alike: a handler that
never reopens inside the signal handler.

A Python signal handler runs between any two bytecodes of the main thread, also inside
BufferedWriter.flush while a log line is half written; a reopen there closes the stream under
the writer ("reentrant call inside BufferedWriter": uvicorn 0.19+'s synchronous handler,
encode/uvicorn#1565, benoitc/gunicorn#2564). So the handler schedules the reopen on the
running event loop, where it runs as an ordinary callback, as gunicorn's own ASGI worker
does (gunicorn/workers/gasgi.py).

- before any loop runs (gunicorn's init_signals comes before uvicorn creates its loop): the
  signal is remembered and the reopen done at the first safe point (safe_point(), called on
  the loop: uvicorn's first tick, or Server.serve starting);
- while a reopen is scheduled and has not started, more signals coalesce into it (a storm of
  rotations costs one reopen per loop turn); one arriving while it runs schedules another;
- after the loop has ended (the process is exiting): dropped, with one line on stderr.

Why call_soon_threadsafe from the handler rather than loop.add_signal_handler (asyncio's own
way, which gasgi uses because its loop exists before init_signals): loop.close() resets every
signal set through add_signal_handler to SIG_DFL, which for SIGUSR1 kills the process, and the
handler would have to move between the process and the loop around the loop's life. One
handler for the whole process has no such window. It is safe from a signal handler on every
loop the package supports: asyncio's call_soon_threadsafe appends to the ready deque (one C
call, which a Python signal handler, run between bytecodes, cannot split) and writes one byte
to the loop's self-pipe, the same two steps asyncio takes for its own signals
(BaseEventLoop._add_callback_signalsafe); uvloop's appends to its ready queue and calls
uv_async_send, which libuv documents as async-signal-safe. tests/test_reopen_units.py keeps
both facts checked (signals sent by another thread at random points of a busy loop, on asyncio
and uvloop; add_signal_handler's SIG_DFL after close), and the storms run it at full load.

The code between the BEGIN/END markers is carried into the versioned diffs, without its
comment-only lines and docstrings (tools/make_patches.py).
"""

import os
import sys

from uvicorn_usr1_patch.atomic_reopen import write_stderr


# BEGIN uvicorn-usr1-patch carried code: loop_reopen
def running_loop():
    """The event loop running in this thread, or None (asyncio and uvloop alike)."""
    try:
        return sys.modules["asyncio"].get_running_loop()
    except AttributeError:  # Python 3.6: the function asyncio.events exports for it
        return sys.modules["asyncio"].events._get_running_loop()
    except (KeyError, RuntimeError):
        return None


class LoopReopen(object):
    """SIGUSR1 handler: `reopen` (which never raises) runs on the event loop, never in here."""

    def __init__(self, reopen):
        self.reopen = reopen
        self.loop = None  # the last loop seen running; None: the loop has not run yet
        self.waiting = False  # a signal came before the loop ran: reopen at the next safe point
        self.pending_on = None  # the loop a reopen is scheduled on, until it starts

    def __call__(self, signum, frame):
        loop = running_loop()
        if loop is not None:
            self.schedule(loop)
        elif self.loop is None:
            self.waiting = True
        else:
            write_stderr("uvicorn-usr1-patch: SIGUSR1 after the loop ended: dropped ({})".format(os.getpid()))

    def safe_point(self):
        """On the loop, outside any signal handler (its first tick, serve() starting)."""
        loop, waiting, self.waiting = running_loop(), self.waiting, False
        self.loop = loop or self.loop
        if waiting:
            self.schedule(loop) if loop else self.run()

    def schedule(self, loop):
        self.loop = loop
        if self.pending_on is loop:
            return  # coalesced into the reopen already scheduled
        try:
            loop.call_soon_threadsafe(self.run)  # safe in a signal handler: see the docstring
            self.pending_on = loop
        except Exception as exc:  # the loop is closing, its self-pipe is full: the next safe point
            self.waiting = True  # or signal tries again
            write_stderr("uvicorn-usr1-patch: SIGUSR1 reopen not scheduled: {!r}".format(exc))

    def run(self):
        self.pending_on = None  # a signal from here on schedules another: a rename may follow
        try:
            self.reopen()
        except Exception as exc:
            write_stderr("uvicorn-usr1-patch: reopen failed in pid {}: {!r}".format(os.getpid(), exc))


# END uvicorn-usr1-patch carried code: loop_reopen
