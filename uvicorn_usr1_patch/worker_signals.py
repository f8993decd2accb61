"""What a patched UvicornWorker.init_signals installs in the worker process.

A Python signal handler runs between any two bytecodes of the main thread, also inside
BufferedWriter.flush while a log record is half written; reopening log files there closes
the stream under the writer ("reentrant call inside BufferedWriter", encode/uvicorn#1565's
synchronous handler). So the SIGUSR1 handler never reopens: it schedules the reopen on the
running event loop, as gunicorn's own ASGI worker does with loop.add_signal_handler. A
signal that comes before the loop runs is remembered and done at the first safe point (the
loop's first tick calls worker.notify); one that comes after the loop has ended is dropped
with a line on stderr (the worker is exiting).

The other signals get what gunicorn's own workers have: a quick exit on QUIT/INT, exit(1)
on ABRT, nothing on TTIN/TTOU, the default for the rest of the master's handlers.

The code between the BEGIN/END markers is carried verbatim into the versioned diffs, with
the names of atomic_reopen beside it: stdlib only, Python 3.6+.
"""

import os
import signal
import sys

from uvicorn_usr1_patch.atomic_reopen import reopen_log_files

# BEGIN uvicorn-usr1-patch carried code: worker_signals

# Handlers a worker needs whatever uvicorn's init_signals left (the master's inherited
# handler on uvicorn <= 0.13.2, SIG_DFL on 0.13.3-0.18.3): a quick exit (QuickExit, with
# gunicorn's handle_quit behind it) and gunicorn's handle_abort. With the default action, the
# master's quick stop (SIGQUIT) and its timeout kill (SIGABRT) dump core (encode/uvicorn#1116,
# benoitc/gunicorn#2604).
WORKER_METHODS = {"SIGQUIT": "handle_quit", "SIGINT": "handle_quit", "SIGABRT": "handle_abort"}
QUICK_EXIT = ("SIGQUIT", "SIGINT")
# The master's add/remove-a-worker signals: their default action stops the worker. A handler
# that does nothing, unlike SIG_IGN, is not inherited by the programs the application execs.
NOTHING_TO_DO = ("SIGTTIN", "SIGTTOU")


def do_nothing(signum, frame):
    """SIGTTIN/SIGTTOU in a worker: only the master adds or removes workers."""


class QuickExit(object):
    """SIGQUIT/SIGINT in a worker, the master's quick stop: uvicorn's quick shutdown.

    gunicorn's own handle_quit raises SystemExit inside the signal handler. Under uvloop the
    handler may run inside a transport callback, which reports the exception ("Fatal error on
    transport") and carries on: the worker stays (tests/test_faults.py, uvicorn 0.18.3). So
    with a running loop the exit is scheduled on it, and uvicorn's Server gets should_exit and
    force_exit (a second Ctrl-C: no waiting for open connections). With no loop, no uvicorn
    Server to stop or one still starting, gunicorn's handle_quit does it."""

    def __init__(self, worker):
        self.worker = worker

    def __call__(self, signum, frame):
        loop = running_loop()
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self.quick_exit, signum)
                return
            except Exception:
                pass
        self.worker.handle_quit(signum, frame)

    def quick_exit(self, signum):
        server = uvicorn_server()
        if server is None or not server.started:
            # still starting: a stopped uvicorn that never started makes UvicornWorker exit
            # with gunicorn's WORKER_BOOT_ERROR, and the master halts ("Worker failed to boot")
            self.worker.handle_quit(signum, None)
            return
        self.worker.alive = False
        try:
            self.worker.cfg.worker_int(self.worker)  # gunicorn's hook, as in its handle_quit
        except Exception:
            pass
        server.should_exit = True
        server.force_exit = True

    def __repr__(self):
        return "<uvicorn_usr1_patch QuickExit for {!r}>".format(self.worker)


def is_master_handler(handler):
    """True for a handler inherited from gunicorn's master: a method of an Arbiter."""
    arbiter = sys.modules.get("gunicorn.arbiter")
    owner = getattr(handler, "__self__", None)
    return arbiter is not None and owner is not None and isinstance(owner, arbiter.Arbiter)


def reset_worker_signals(worker):
    """Give each signal still set by the master, or left at a harmful default, its worker
    handler. Decided by what the handler is, not by the uvicorn release: on uvicorn <= 0.13.2
    every master handler is still there (SIGCHLD's swallowed subprocess exit codes,
    encode/uvicorn#894). Returns {signal name: what it was set to}."""
    changed = {}
    for signum in range(1, signal.NSIG):
        try:
            handler = signal.getsignal(signum)
            name = signal.Signals(signum).name
        except (ValueError, OSError):
            continue
        inherited = is_master_handler(handler)
        if not inherited and handler != signal.SIG_DFL:
            continue  # uvicorn's own handler, or one the application installed
        method = getattr(worker, WORKER_METHODS.get(name, ""), None)
        if name in NOTHING_TO_DO:
            new = do_nothing
        elif callable(method):
            new = QuickExit(worker) if name in QUICK_EXIT else method
        elif inherited:
            new = signal.SIG_DFL
        else:
            continue
        signal.signal(signum, new)
        changed[name] = "SIG_DFL" if new is signal.SIG_DFL else getattr(new, "__name__", type(new).__name__)
    return changed


def running_loop():
    """The event loop running in this thread, or None (asyncio and uvloop alike)."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    get = getattr(asyncio, "_get_running_loop", None) or asyncio.events._get_running_loop
    return get()


def write_stderr(line):
    """A line on fd 2 without Python's buffered streams (safe inside a signal handler)."""
    try:
        os.write(2, (line + "\n").encode("utf-8", "replace"))
    except Exception:
        pass


def gunicorn_log_paths(log):
    """The files a fresh worker would inherit already opened by the master."""
    paths = set()
    for name in ("error_log", "access_log"):
        for handler in getattr(getattr(log, name, None), "handlers", ()):
            path = getattr(handler, "baseFilename", None)
            if path:
                paths.add(path)
    cfg = getattr(log, "cfg", None)
    if cfg is not None and getattr(cfg, "capture_output", False):
        paths.add(cfg.errorlog)
    return paths


def master_runs_as_another_user(worker):
    """gunicorn as root with --user: the master may open what the worker cannot."""
    try:
        return os.stat("/proc/{}".format(worker.ppid)).st_uid != os.geteuid()
    except (AttributeError, OSError):
        return True


# Seconds a handing-over worker keeps serving, after it stopped accepting, the connections
# it had accepted (their requests are on the way), before uvicorn's graceful shutdown.
HAND_OVER_GRACE = 0.5


# A worker that must hand over while uvicorn is still starting (a USR1 during the
# application's startup) waits for uvicorn to listen, checking every tenth of a second:
# exiting before that would drop the connections uvicorn accepts on its way out.
STARTUP_CHECKS = 100


# What tells uvicorn's Server (0.4.2 and every later release) from the other objects with
# a coroutine on the loop: its lifespan also has should_exit, and a config.
SERVER_ATTRIBUTES = ("server_state", "started", "should_exit", "force_exit")


def uvicorn_server():
    """The uvicorn Server whose serve() runs on this thread's loop, found as `self` on the
    stack of its coroutines; None when there is none."""
    loop = running_loop()
    asyncio = sys.modules.get("asyncio")
    if loop is None or asyncio is None:
        return None
    all_tasks = getattr(asyncio, "all_tasks", None) or asyncio.Task.all_tasks  # 3.6
    for task in list(all_tasks(loop)):
        coro = getattr(task, "_coro", None)
        while coro is not None:
            frame = getattr(coro, "cr_frame", None)
            owner = frame.f_locals.get("self") if frame is not None else None
            if all(hasattr(owner, name) for name in SERVER_ATTRIBUTES):
                return owner
            coro = getattr(coro, "cr_await", None)
    return None


def is_listening(server):
    """uvicorn sets `started` once its servers listen."""
    return server.started and isinstance(getattr(server, "servers", None), list)


def stop_accepting(worker, server):
    """Close uvicorn's listening servers; [(gunicorn listener, fd, inode)] for each of the
    worker's listening sockets, or [] when uvicorn's servers were not found."""
    if server is None or not is_listening(server) or not server.servers:
        return []
    listeners = []
    for listener in getattr(worker, "sockets", None) or ():
        try:
            fd = listener.fileno()
            listeners.append((listener, fd, os.fstat(fd).st_ino))
        except Exception:
            continue
    for each in list(server.servers):
        each.close()
    return listeners


def terminate_after_hand_over(listeners):
    """SIGTERM to this worker (uvicorn's graceful shutdown), once the grace has passed.

    uvloop closes a listening fd itself when its server closes, while gunicorn's socket
    object still holds that number, and uvicorn's shutdown closes that object again: by then
    the number may belong to a file or connection the application opened during the grace.
    Such an object is detached first, so that its close does nothing."""
    for listener, fd, inode in listeners:
        try:
            same = os.fstat(fd).st_ino == inode
        except OSError:
            same = False
        sock = getattr(listener, "sock", None)
        if not same and sock is not None and sock.fileno() == fd:
            try:
                sock.detach()
            except Exception:
                pass
    os.kill(os.getpid(), signal.SIGTERM)


class DeferredReopen(object):
    """SIGUSR1 handler: schedule one reopen of the worker's log files on the running loop.

    A burst of signals before the reopen has run coalesces into that one pending call; a
    signal arriving while the reopen runs schedules another (a rename may follow it).
    """

    def __init__(self, worker):
        self.worker = worker
        self.pending_on = None  # the loop a reopen is scheduled on; set only once scheduled
        self.waiting = False  # a signal came before the loop ran: reopen at the next safe point
        self.loop_seen = False
        self.handing_over = False

    def __call__(self, signum, frame):
        loop = running_loop()
        if loop is not None:
            self.loop_seen = True
            self.schedule(loop)
        elif self.loop_seen:
            write_stderr(
                "uvicorn-usr1-patch: SIGUSR1 after the event loop ended in worker {}: "
                "not reopened, the worker is exiting".format(os.getpid())
            )
        else:
            self.waiting = True

    def schedule(self, loop):
        if self.pending_on is loop:
            return
        try:
            loop.call_soon_threadsafe(self.reopen)
        except Exception:
            self.waiting = True  # retried at the next safe point
            return
        self.pending_on = loop

    def safe_point(self):
        """Called by worker.notify, outside any signal handler: do a remembered reopen."""
        loop = running_loop()
        if loop is not None:
            self.loop_seen = True
        if not self.waiting:
            return
        self.waiting = False
        if loop is None:
            self.reopen()
        else:
            self.schedule(loop)

    def reopen(self):
        self.pending_on = None
        try:
            failures = self.reopen_logs()
            inherited = gunicorn_log_paths(getattr(self.worker, "log", None))
            # Only the files a fresh worker inherits from the master: a fresh worker that
            # cannot open the application's own log at import would fail to boot.
            if failures and all(path in inherited for path, _ in failures):
                if master_runs_as_another_user(self.worker):
                    self.hand_over()
        except Exception as exc:
            write_stderr("uvicorn-usr1-patch: reopen failed in worker {}: {!r}".format(os.getpid(), exc))

    def reopen_logs(self):
        return reopen_log_files(getattr(self.worker, "log", None))

    def hand_over(self):
        """Stop gracefully (finish in-flight requests), as on gunicorn's own SIGTERM, so
        the master forks a fresh worker holding the files it has just reopened. A fresh
        worker does not reopen at boot: this cannot loop.

        uvicorn's shutdown closes every connection that has no request in progress, also one
        it accepted a moment ago whose request it has not read yet: that client gets a reset.
        So the worker first stops accepting (the master and the other workers keep the
        listening socket), serves for HAND_OVER_GRACE seconds what it has accepted, and only
        then sends itself SIGTERM. While uvicorn is still starting, it first waits for it to
        listen: a SIGTERM then makes uvicorn return right after it started listening, and
        the connections it accepted meanwhile are reset."""
        if self.handing_over:
            return
        self.handing_over = True
        message = (
            "uvicorn-usr1-patch: worker {} cannot reopen its log files; it stops gracefully so "
            "that the master starts a fresh worker with the files the master reopened"
        ).format(os.getpid())
        try:
            self.worker.log.error(message)
        except Exception:
            write_stderr(message)
        self.stop_then_terminate(STARTUP_CHECKS)

    def stop_then_terminate(self, checks):
        loop = running_loop()
        server = uvicorn_server()
        if loop is not None and server is not None and not is_listening(server) and checks > 0:
            loop.call_later(0.1, self.stop_then_terminate, checks - 1)
            return
        listeners = stop_accepting(self.worker, server)
        if loop is None or not listeners:
            os.kill(os.getpid(), signal.SIGTERM)
            return
        loop.call_later(HAND_OVER_GRACE, terminate_after_hand_over, listeners)

    def __repr__(self):
        return "<uvicorn_usr1_patch DeferredReopen for {!r}>".format(self.worker)


def watch_safe_points(worker, handler):
    """uvicorn's callback_notify calls worker.notify() from its first loop tick on: a safe
    point for a reopen remembered from before the loop ran."""
    notify = getattr(worker, "notify", None)
    if not callable(notify):
        return

    def notify_and_reopen(*args, **kwargs):
        try:
            handler.safe_point()
        except Exception:
            pass
        return notify(*args, **kwargs)

    worker.notify = notify_and_reopen


def watch_quit_from_the_loop(worker):
    """uvicorn 0.20+ sets SIGQUIT, once its loop runs, to loop.add_signal_handler(SIGQUIT,
    worker.handle_exit) (encode/uvicorn#1710); gunicorn's handle_exit only sets worker.alive,
    which uvicorn never reads: the worker stays until the master's SIGKILL, graceful-timeout
    seconds after its quick stop. The worker's handle_exit also stops uvicorn on SIGQUIT."""
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
    """Give the worker gunicorn's handlers and the loop-safe SIGUSR1 handler."""
    reset_worker_signals(worker)
    watch_quit_from_the_loop(worker)
    handler = DeferredReopen(worker)
    signal.signal(signal.SIGUSR1, handler)
    # As gunicorn's own workers: don't let the signal break a system call in a request.
    signal.siginterrupt(signal.SIGUSR1, False)
    watch_safe_points(worker, handler)
    return handler


# END uvicorn-usr1-patch carried code: worker_signals
