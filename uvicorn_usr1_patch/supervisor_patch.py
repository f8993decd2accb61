"""Plain uvicorn's supervisors (`--workers N`, `--reload`): on SIGUSR1, reopen the
supervisor's own log files, then relay the signal to each live child by PID; each child is
a Server patched by server_patch, which reopens its own files from its event loop.

Unpatched, USR1 kills the supervisor of uvicorn <= 0.29 (default action) and orphans its
workers, which keep serving into the renamed file; the 0.30+ Multiprocess queues the signal
and finds no handle_usr1, so nothing is reopened anywhere (issue 11).

Two shapes, told apart by what the class has, not by the release:
- Multiprocess with handle_signals and a module SIGNALS that includes SIGUSR1 (0.30+): its
  own handler queues the signal and the main loop calls handle_<name>(); it gains a
  handle_usr1, run by that loop, outside any signal handler.
- Multiprocess (<= 0.29) and BaseReload (every release here) with startup() and run(): the
  main thread blocks in should_exit.wait(). startup() first installs a SIGUSR1 handler that
  only writes a byte to a pipe; a thread of ours reads it and reopens and relays. A burst of
  signals coalesces into one reopen; one arriving during the reopen makes another.
Anything else: not patched, one warning.

A child is signalled only while it is our child, alive, and catching SIGUSR1 (its Server is
serving): one still starting up would die of the default action (and 0.30+ would restart it).
"""

import logging
import os
import signal
import threading

from uvicorn_usr1_patch import patching, procfs, warn_skip
from uvicorn_usr1_patch.atomic_reopen import reopen_log_files

logger = logging.getLogger("uvicorn.error")


# -- what the supervisor does on SIGUSR1 ----------------------------------------------------------
def child_pids(supervisor):
    """The PIDs of the children the supervisor knows: `processes` (--workers) or `process`."""
    processes = getattr(supervisor, "processes", None)
    if processes is None:
        processes = [getattr(supervisor, "process", None)]
    pids = []
    for process in list(processes):
        pid = getattr(process, "pid", None)
        if isinstance(pid, int) and pid > 0:
            pids.append(pid)
    return pids


def relay_target(pid):
    """'relay', 'starting' (would die of the signal) or 'gone' (dead, reaped or not ours)."""
    if not os.path.isdir("/proc/self"):
        return "relay"  # no /proc (not Linux): trust the supervisor's list
    try:
        if procfs.parent_pid(pid) != os.getpid() or procfs.is_zombie(pid):
            return "gone"
    except (OSError, ValueError, IndexError):
        return "gone"
    return "relay" if procfs.catches_usr1(pid) else "starting"


def reopen_and_relay(supervisor):
    """Reopen this process's log files, then send SIGUSR1 to each child that can take it."""
    reopen_log_files()
    relayed = []
    for pid in child_pids(supervisor):
        target = relay_target(pid)
        if target == "starting":
            logger.warning(
                "uvicorn-usr1-patch: child process [%s] is still starting: SIGUSR1 not relayed "
                "(it would die of it); it writes to the files it opened at start-up",
                pid,
            )
            continue
        if target != "relay":
            continue
        try:
            os.kill(pid, signal.SIGUSR1)
            relayed.append(pid)
        except OSError:
            pass  # exited meanwhile
    logger.info(
        "Received SIGUSR1, reopened the log files and relayed it to child processes %s.",
        relayed,
    )
    return relayed


def handle_usr1(self):
    """SIGUSR1 in uvicorn's Multiprocess (0.30+): called by its main loop (handle_signals),
    every 0.5 s, once per queued signal. handle_signals takes each signal off the queue before
    calling its handler: a USR1 still queued gets its own call later, so this one coalesces
    into it (a burst of rotations makes one reopen per tick, not one per signal)."""
    if signal.SIGUSR1 in getattr(self, "signal_queue", ()):
        return
    reopen_and_relay(self)


class PipeRelay(object):
    """SIGUSR1 handler for a supervisor whose main thread only waits: wakes a thread of ours."""

    def __init__(self, supervisor):
        self.supervisor = supervisor
        self.read_fd, self.write_fd = os.pipe()  # not inherited by the children (PEP 446)
        os.set_blocking(self.write_fd, False)
        self.thread = threading.Thread(target=self.run, name="uvicorn-usr1-patch relay", daemon=True)
        # The kernel gives a process's signal to any thread that does not block it; one taken
        # by this thread would leave the main thread asleep with the handler unrun. The thread
        # inherits the mask it is started with, so it never takes SIGUSR1.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
        try:
            self.thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def __call__(self, signum, frame):
        try:
            os.write(self.write_fd, b"\0")  # async-signal-safe; never reopens here
        except OSError:
            pass  # the pipe is full: a reopen is already due

    def run(self):
        while True:
            try:
                data = os.read(self.read_fd, 4096)  # every signal so far: one reopen
            except OSError:
                return
            if not data:
                return
            try:
                reopen_and_relay(self.supervisor)
            except Exception as exc:
                logger.error("uvicorn-usr1-patch: SIGUSR1 relay failed: %r", exc)

    def __repr__(self):
        return "<uvicorn_usr1_patch PipeRelay for {!r}>".format(self.supervisor)


def install_pipe_relay(supervisor):
    """Take SIGUSR1 in the supervisor, unless something else already handles it."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGUSR1) != signal.SIG_DFL:
        return None
    relay = PipeRelay(supervisor)
    # No siginterrupt(False) here: the main thread sleeps in should_exit.wait(), whose futex
    # wait SA_RESTART would resume without ever returning to Python to run this handler.
    signal.signal(signal.SIGUSR1, relay)
    return relay


def wrap_startup(original):
    def startup(self, *args, **kwargs):
        try:
            install_pipe_relay(self)  # before the children exist: none misses a rotation
        except Exception as exc:
            warn_skip("the SIGUSR1 relay of uvicorn's supervisor", "{}: {}".format(type(exc).__name__, exc))
        return original(self, *args, **kwargs)

    return startup


# -- patching by shape ------------------------------------------------------------------------------
def is_patched(cls):
    return patching.is_patched(cls, "handle_usr1") or patching.is_patched(cls, "startup")


def patch_class(cls, signals=None):
    """Patch a supervisor class (Multiprocess or BaseReload); True when patched."""
    if is_patched(cls):
        return True
    name = "{}.{}".format(cls.__module__, cls.__name__)
    own = vars(cls)
    if callable(own.get("handle_signals")):
        if not isinstance(signals, dict) or signal.SIGUSR1 not in signals:
            warn_skip(name, "its signal queue does not take SIGUSR1")
            return False
        if "handle_usr1" in own:
            warn_skip(name, "it handles SIGUSR1 itself")
            return False
        patching.replace(cls, "handle_usr1", lambda missing: handle_usr1)
        return True
    if callable(own.get("startup")) and callable(own.get("run")):
        patching.replace(cls, "startup", wrap_startup)
        return True
    warn_skip(name, "it has neither handle_signals nor startup and run")
    return False


def patch_module(module):
    """uvicorn.supervisors.multiprocess (Multiprocess) or .basereload (BaseReload)."""
    if not hasattr(signal, "SIGUSR1"):
        warn_skip(module.__name__, "this platform has no SIGUSR1")
        return False
    for class_name in ("Multiprocess", "BaseReload"):
        cls = getattr(module, class_name, None)
        if isinstance(cls, type) and cls.__module__ == module.__name__:
            return patch_class(cls, getattr(module, "SIGNALS", None))
    warn_skip(module.__name__, "it defines neither Multiprocess nor BaseReload")
    return False
