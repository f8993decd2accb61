"""Unit level, in the pytest process (no gunicorn): the SIGUSR1 primitive (LoopReopen) with real
signals, and the atomic reopen on real files that cannot be opened."""

import asyncio
import errno
import logging
import logging.handlers
import os
import re
import signal
import threading

import pytest

from uvicorn_usr1_patch import atomic_reopen
from uvicorn_usr1_patch.loop_reopen import LoopReopen
from uvicorn_usr1_patch.worker_signals import QuickExit

PACKAGE = os.path.dirname(os.path.abspath(atomic_reopen.__file__))


class Counter(object):
    """The work LoopReopen runs, replaced by a counter."""

    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1


def counting_reopen():
    handler = LoopReopen(Counter())
    handler.calls = lambda: handler.reopen.calls
    return handler


@pytest.fixture
def usr1():
    """Install a handler for SIGUSR1 in this process; restore the previous one after."""
    previous = signal.getsignal(signal.SIGUSR1)

    def install(handler):
        signal.signal(signal.SIGUSR1, handler)
        return handler

    yield install
    signal.signal(signal.SIGUSR1, previous)


def send_usr1():
    os.kill(os.getpid(), signal.SIGUSR1)  # the handler runs before os.kill returns to Python


def test_a_failed_schedule_does_not_leave_the_flag_stuck(usr1):
    """call_soon_threadsafe raising once (not a RuntimeError: its self-pipe write failing):
    that signal is remembered, the next one schedules."""
    handler = usr1(counting_reopen())

    async def main():
        loop = asyncio.get_running_loop()
        real, failures = loop.call_soon_threadsafe, []

        def fails_once(*args):
            if not failures:
                failures.append(1)
                raise OSError(errno.EAGAIN, "self-pipe full (on purpose)")
            return real(*args)

        loop.call_soon_threadsafe = fails_once
        send_usr1()
        assert (handler.pending_on, handler.waiting) == (None, True)
        await asyncio.sleep(0.01)
        assert handler.calls() == 0
        send_usr1()
        assert handler.pending_on is loop
        await asyncio.sleep(0.01)
        assert (handler.calls(), handler.pending_on) == (1, None)
        send_usr1()  # and again: nothing stays set
        await asyncio.sleep(0.01)
        assert handler.calls() == 2

    asyncio.run(main())


def test_a_signal_before_the_loop_is_done_at_the_first_safe_point(usr1):
    handler = usr1(counting_reopen())
    send_usr1()
    send_usr1()
    assert (handler.calls(), handler.waiting) == (0, True)  # never inside the signal handler

    async def main():
        handler.safe_point()  # worker.notify() at the loop's first tick, or serve() starting
        assert handler.calls() == 0  # scheduled, not run inside the safe point either
        await asyncio.sleep(0.01)
        assert handler.calls() == 1

    asyncio.run(main())
    assert handler.waiting is False


def test_a_safe_point_without_a_loop_reopens_there():
    handler = counting_reopen()
    handler(signal.SIGUSR1, None)
    handler.safe_point()
    assert handler.calls() == 1
    handler.safe_point()
    assert handler.calls() == 1


def test_a_signal_after_the_loop_ended_is_dropped_with_a_line(usr1, capfd):
    handler = usr1(counting_reopen())

    async def main():
        send_usr1()
        await asyncio.sleep(0.01)

    asyncio.run(main())
    assert handler.calls() == 1
    send_usr1()
    handler.safe_point()
    assert handler.calls() == 1
    assert "SIGUSR1 after the loop ended: dropped ({})".format(os.getpid()) in capfd.readouterr().err


def test_a_reopen_that_raises_leaves_one_line_and_the_next_one_runs(usr1, capfd):
    calls = []

    def fails_once():
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("on purpose")

    usr1(LoopReopen(fails_once))

    async def main():
        for _ in range(2):
            send_usr1()
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert len(calls) == 2
    assert capfd.readouterr().err.count("reopen failed in pid {}: ValueError".format(os.getpid())) == 1


def test_signals_from_another_thread_at_random_points_of_a_busy_loop(usr1):
    """Why call_soon_threadsafe from the handler is safe (loop_reopen's docstring): 2,000 signals
    land anywhere in a loop busy with its own callbacks and timers; nothing raises, every
    signal is either coalesced or reopens, and the last one is followed by a reopen."""
    handler = usr1(counting_reopen())
    sent, busy_now = [], threading.Event()

    def sender():
        busy_now.wait(10)
        for _ in range(2000):
            send_usr1()
            sent.append(1)

    async def main():
        loop = asyncio.get_running_loop()
        busy = []

        def tick(n):
            busy.append(n)
            if n:
                loop.call_soon(tick, n - 1)

        thread = threading.Thread(target=sender)
        thread.start()
        while thread.is_alive():
            busy_now.set()
            tick(50)
            loop.call_later(0, tick, 10)
            await asyncio.sleep(0)
        thread.join()
        calls_at_end = handler.calls()
        for _ in range(20):
            await asyncio.sleep(0)
        return calls_at_end, len(busy)

    calls_at_end, busy = asyncio.run(main())
    assert len(sent) == 2000 and busy > 0
    assert 1 <= handler.calls() <= 2000
    assert handler.pending_on is None and handler.waiting is False
    assert handler.calls() >= calls_at_end


def test_asyncio_resets_a_loop_signal_to_the_default_on_close(usr1):
    """Why the handler is not loop.add_signal_handler: once the loop is closed, SIGUSR1 would
    be SIG_DFL again, which kills the process (a worker exiting, a server after serve())."""
    usr1(signal.SIG_IGN)
    loop = asyncio.new_event_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    loop.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_the_package_reads_no_asyncio_task_frames():
    """uvicorn's Server comes from the serve wrapper (worker.server), not from the stack of
    the loop's tasks: none of asyncio's private task and coroutine internals are used."""
    private = re.compile(r"\b(_coro|cr_frame|f_locals|cr_await|all_tasks)\b")
    found = []
    for name in sorted(os.listdir(PACKAGE)):
        if name.endswith(".py"):
            with open(os.path.join(PACKAGE, name)) as f:
                for number, line in enumerate(f, 1):
                    code = line.split("#", 1)[0]
                    if private.search(code):
                        found.append("{}:{}: {}".format(name, number, line.strip()))
    assert found == []
    assert private.search("task._coro.cr_frame.f_locals")  # the control: the pattern finds them


# -- atomic reopen ----------------------------------------------------------------------------


@pytest.fixture
def file_logger(tmp_path):
    """A logger with a FileHandler on tmp_path/logs/app.log, and one collecting the error lines."""
    logs = tmp_path / "logs"
    logs.mkdir()
    path = str(logs / "app.log")
    logger = logging.getLogger("issue9-unit-{}".format(id(tmp_path)))
    logger.propagate = False
    handler = logging.FileHandler(path)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    errors = []
    collector = logging.Handler()
    collector.emit = lambda record: errors.append(record.getMessage())
    error_logger = logging.getLogger("uvicorn.error")
    error_logger.addHandler(collector)
    logger.info("before")
    yield logger, handler, path, errors
    error_logger.removeHandler(collector)
    logger.removeHandler(handler)
    handler.close()


def make_directory(path):
    os.rename(path, path + ".1")
    os.mkdir(path)
    return path + ".1"


def remove_directory(path):
    directory = os.path.dirname(path)
    os.rename(directory, directory + ".gone")
    return os.path.join(directory + ".gone", os.path.basename(path))


def deny(path, handler):
    """Root opens anything: the open itself is made to fail as it does for `nobody`."""
    os.rename(path, path + ".1")

    def denied():
        raise PermissionError(errno.EACCES, "Permission denied", path)

    handler._open = denied
    return path + ".1"


@pytest.mark.parametrize("fault", ["EISDIR", "ENOENT", "EACCES"])
def test_a_failed_reopen_keeps_writing_to_the_old_file(fault, file_logger):
    logger, handler, path, errors = file_logger
    stream = handler.stream
    old = {"EISDIR": make_directory, "ENOENT": remove_directory}.get(fault, lambda p: deny(p, handler))(path)
    failures = atomic_reopen.reopen_log_files()  # never raises
    assert [(p, errno.errorcode[e.errno]) for p, e in failures if p == path] == [(path, fault)]
    assert handler.stream is stream and not stream.closed
    logger.info("after")
    handler.flush()
    with open(old) as f:
        assert f.read() == "before\nafter\n"
    [line] = [e for e in errors if path in e]
    assert "cannot reopen {} on SIGUSR1".format(path) in line and "({})".format(fault) in line
    assert "pid {} runs as uid {} gid {}".format(os.getpid(), os.geteuid(), os.getegid()) in line
    assert ("fix: logrotate's `create` must name gunicorn's --user" in line) == (fault == "EACCES")


class OddHandler(logging.FileHandler):
    """A FileHandler subclass whose own _open fails with something other than an OSError."""

    def _open(self):
        if getattr(self, "broken", False):
            raise ValueError("odd handler")
        return super()._open()


def test_an_odd_handler_does_not_stop_the_others(file_logger, tmp_path):
    logger, handler, path, errors = file_logger
    odd = OddHandler(str(tmp_path / "odd.log"))
    odd.broken = True
    logging.getLogger("issue9-odd").addHandler(odd)
    try:
        os.rename(path, path + ".1")
        failures = atomic_reopen.reopen_log_files()
        assert [(p, type(e).__name__) for p, e in failures] == [(odd.baseFilename, "ValueError")]
        logger.info("after")  # the plain handler after it was reopened all the same
        handler.flush()
        with open(path) as f:
            assert f.read() == "after\n"
    finally:
        logging.getLogger("issue9-odd").removeHandler(odd)
        odd.close()


def test_a_successful_reopen_swaps_the_stream_and_closes_the_old_one(file_logger):
    logger, handler, path, errors = file_logger
    stream = handler.stream
    os.rename(path, path + ".1")
    assert [f for f in atomic_reopen.reopen_log_files() if f[0] == path] == []
    assert handler.stream is not stream and stream.closed
    logger.info("after")
    handler.flush()
    with open(path) as f:
        assert f.read() == "after\n"
    assert errors == []


# -- the quick exit (SIGQUIT) -----------------------------------------------------------------


class FakeWorker(object):
    def __init__(self):
        self.alive = True
        self.quit_calls = []
        self.hooks = []
        worker = self

        class Cfg(object):
            def worker_int(self, w):
                worker.hooks.append(w)

        self.cfg = Cfg()

    def handle_quit(self, signum, frame):
        self.quit_calls.append(signum)


class FakeLifespan(object):
    """uvicorn's lifespan: should_exit and config too, but it is not the Server."""

    def __init__(self):
        self.should_exit = False
        self.config = object()

    async def main(self):
        await asyncio.sleep(0.2)


class FakeServer(object):
    """The attributes of uvicorn's Server that the quick exit uses (every release)."""

    def __init__(self, started):
        self.server_state, self.config = object(), object()
        self.started, self.should_exit, self.force_exit = started, False, False
        self.servers = []

    async def serve(self, seconds):
        await asyncio.sleep(seconds)


@pytest.fixture
def sigquit():
    previous = signal.getsignal(signal.SIGQUIT)
    yield lambda handler: signal.signal(signal.SIGQUIT, handler)
    signal.signal(signal.SIGQUIT, previous)


@pytest.mark.parametrize("started", [True, False])
def test_quick_exit_stops_uvicorn_from_the_loop(started, sigquit):
    """Started: should_exit + force_exit on the Server (not on its lifespan), from a loop
    callback, gunicorn's worker_int hook called. Still starting: gunicorn's handle_quit."""
    worker, server, lifespan = FakeWorker(), FakeServer(started), FakeLifespan()
    worker.server = server  # what the serve wrapper (server_patch) sets
    sigquit(QuickExit(worker))

    async def main():
        task = asyncio.ensure_future(lifespan.main())  # another task with should_exit first
        serving = asyncio.ensure_future(server.serve(0.2))
        await asyncio.sleep(0.01)
        os.kill(os.getpid(), signal.SIGQUIT)
        assert not server.should_exit and worker.quit_calls == []  # nothing inside the handler
        await asyncio.sleep(0.05)
        await asyncio.gather(task, serving)

    asyncio.run(main())
    assert lifespan.should_exit is False
    if started:
        assert (server.should_exit, server.force_exit, worker.alive) == (True, True, False)
        assert worker.hooks == [worker] and worker.quit_calls == []
    else:
        assert (server.should_exit, worker.quit_calls) == (False, [signal.SIGQUIT])


def test_quick_exit_without_a_loop_is_gunicorns(sigquit):
    worker = FakeWorker()
    sigquit(QuickExit(worker))
    os.kill(os.getpid(), signal.SIGQUIT)
    assert worker.quit_calls == [signal.SIGQUIT]


def test_quick_exit_says_when_the_worker_int_hook_raises(sigquit, capfd):
    worker = FakeWorker()
    worker.server = FakeServer(True)

    def raising(w):
        raise RuntimeError("the user's hook")

    worker.cfg.worker_int = raising
    QuickExit(worker).quick_exit(signal.SIGQUIT)
    assert worker.server.should_exit and not worker.alive
    assert "the worker_int hook raised RuntimeError(" in capfd.readouterr().err


# -- a reopen never truncates, never opens twice ---------------------------------------------


@pytest.mark.parametrize("mode", ["w", "a"])
def test_a_reopen_without_a_rotation_appends_even_for_a_w_handler(mode, tmp_path):
    """basicConfig(filemode="w") / dictConfig "mode": "w": a USR1 with no rotation of that
    file (a second signal, notifempty skipping it) must not truncate the live log."""
    path = str(tmp_path / "app.log")
    logger = logging.getLogger("unit-mode-{}-{}".format(mode, id(tmp_path)))
    logger.propagate = False
    handler = logging.FileHandler(path, mode=mode)
    logger.addHandler(handler)
    try:
        for n in range(5):
            logger.warning("line %d", n)
        assert atomic_reopen.reopen_log_files() == []
        for n in range(5, 10):
            logger.warning("line %d", n)
        handler.flush()
        with open(path) as f:
            assert f.read() == "".join("line {}\n".format(n) for n in range(10))
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_the_w_control_truncates_with_its_own_mode(tmp_path):
    """The control: reopening with the handler's own mode "w" (gunicorn's reopen_files does
    handler.stream = handler._open()) loses the five lines."""
    path = str(tmp_path / "app.log")
    handler = logging.FileHandler(path, mode="w")
    handler.stream.write("five\nlines\n")
    handler.stream.flush()
    old = handler.stream
    handler.stream = handler._open()
    old.close()
    with open(path) as f:
        assert f.read() == ""
    handler.close()


def test_a_watched_file_handler_is_opened_once_per_rotation(tmp_path):
    path = str(tmp_path / "watched.log")
    logger = logging.getLogger("unit-watched-{}".format(id(tmp_path)))
    logger.propagate = False
    handler = logging.handlers.WatchedFileHandler(path)
    logger.addHandler(handler)
    opens = []
    real_open = handler._open
    handler._open = lambda: opens.append(1) or real_open()
    try:
        logger.warning("before")
        os.rename(path, path + ".1")
        assert atomic_reopen.reopen_log_files() == []
        logger.warning("after")  # reopenIfNeeded finds the new file's dev/ino: no second open
        handler.flush()
        assert len(opens) == 1
        with open(path) as f:
            assert f.read() == "after\n"
        with open(path + ".1") as f:
            assert f.read() == "before\n"
    finally:
        logger.removeHandler(handler)
        handler.close()
