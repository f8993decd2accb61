"""Issue 9, with real gunicorn and real faults: a reopen that can never make things worse.

1. Wrong owner: gunicorn as root with --user nobody; logrotate renames access.log and
   error.log and creates new ones root:root 0600 (a `create` line that does not match the
   --user). The master can open them, the workers cannot.
2. Nobody can open the new files: their paths are directories, or the log directory is gone.
3. SIGQUIT, gunicorn's quick stop, to a worker of every core stack: it exits cleanly (no core
   dump, no SIGKILL) and is replaced; the master's SIGINT ends everything the same way.
   Controls: 0.18.3 dumps core, 0.29.0 ignores it until the master's SIGKILL.

Two clients send requests with unique ids across the rotation; every id answered must have
exactly one line in the old or the new access.log. Each scenario has its unpatched control
(UVICORN_USR1_PATCH=0), asserted to show what the release does. The figures are printed
(pytest -s) for the closing note of issue 9.
"""

import glob
import grp
import json
import os
import pwd
import signal
import time

import faults
import pytest
from stacks import STACKS, shared_venv, venv

from tools import venvs
from tools.gunicorn_run import Timeout, wait_for

pytestmark = pytest.mark.e2e
WRONG_OWNER_STACKS = ["uvicorn-0.13.1", "uvicorn-0.29.0"]
OFF = {"UVICORN_USR1_PATCH": "0"}
FRESH_WORKERS_DEADLINE = 10  # seconds for the hand-over: new workers, lines in the new file
CONTROL_REQUESTS = 200  # answered after the rotation before the control's files are looked at


@pytest.fixture
def layout():
    made = faults.Layout()
    yield made
    made.remove()


def figures(name, label, g, clients, before, after, old):
    result = faults.line_figures(clients, g.access_log, old)
    result.update({"stack": name, "run": label, "workers replaced": len(set(before) - set(after))})
    result["failures"] = sorted(set(clients.failed().values()))
    print("\nissue-9 figures: " + json.dumps(result))
    return result


def error_lines(g, needle):
    lines = []
    for path in glob.glob(os.path.join(os.path.dirname(g.error_log), "*")) + [g.stderr_path]:
        if os.path.isfile(path):
            with open(path, errors="replace") as f:
                lines += [line for line in f if needle in line]
    return lines


def test_shared_venvs_are_not_writable_by_nobody():
    for name in WRONG_OWNER_STACKS:
        shared_venv(name)
    assert venvs.shared_tree_problems() == []


# -- 1. wrong owner -------------------------------------------------------------------------


def wrong_owner_run(name, layout, env, patched):
    g = faults.server(shared_venv(name), layout, env=env)
    old = g.access_log + ".1"
    with g:
        before = g.worker_pids()
        with faults.Clients(g.port) as clients:
            faults.wait_for_requests(clients, 50)
            faults.rotate_to_wrong_owner([g.access_log, g.error_log])
            g.usr1_master()
            if patched:
                wait_for(
                    lambda: (
                        faults.ids_in(g.access_log)
                        and len(g.worker_pids()) == g.workers
                        and not set(g.worker_pids()) & set(before)
                    ),
                    FRESH_WORKERS_DEADLINE,
                    what="fresh workers writing into the new access.log",
                )
            else:
                faults.wait_for_requests(clients, CONTROL_REQUESTS)
            faults.wait_for_requests(clients, 50)  # still serving
        after = g.worker_pids()
        assert faults.alive(g.master_pid)
        master_alive = g.proc.poll() is None
    assert master_alive
    return g, figures(name, "patched" if patched else "control", g, clients, before, after, old)


@pytest.mark.parametrize("name", WRONG_OWNER_STACKS)
def test_wrong_owner_hands_over_to_fresh_workers(name, layout):
    g, result = wrong_owner_run(name, layout, {}, patched=True)
    assert result["failed"] == 0 and result["answered"] == result["sent"], result
    assert result["lost"] == 0 and result["duplicated"] == 0, result
    assert result["new file"] > 0 and result["workers replaced"] == g.workers, result
    # one line per file per process that could not reopen, naming path, errno and user
    for path in (g.access_log, g.error_log):
        lines = error_lines(g, "cannot reopen {} on SIGUSR1".format(path))
        assert len(lines) == g.workers, lines
        runs_as = "runs as uid {} gid {}".format(
            pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
        )
        assert all(
            "(EACCES)" in line and runs_as in line and "fix: logrotate's `create`" in line for line in lines
        )
    assert len(error_lines(g, "stops gracefully")) == g.workers
    assert error_lines(g, "Traceback") == []


def test_control_0_13_1_wrong_owner_keeps_writing_into_the_rotated_file(layout):
    """uvicorn <= 0.13.2 unpatched: the workers never reopen anything."""
    g, result = wrong_owner_run("uvicorn-0.13.1", layout, OFF, patched=False)
    assert result["failed"] == 0 and result["lost"] == 0, result
    assert result["new file"] == 0 and result["workers replaced"] == 0, result


def test_control_0_29_0_wrong_owner_raises_inside_the_worker(layout):
    """uvicorn 0.29.0 unpatched (uvloop): gunicorn's reopen, in the synchronous signal
    handler, closes the error log first, cannot open it again and raises PermissionError
    into whatever the worker was running: uvloop's signal callback (which prints it), or a
    request (which may then never be answered: the client's timeout), or the worker's
    serve task (the worker dies and is replaced). Where it lands varies from run to run;
    what does not: the exception, and no line lost."""
    g, result = wrong_owner_run("uvicorn-0.29.0", layout, OFF, patched=False)
    assert result["lost"] == 0, result
    denied = "PermissionError: [Errno 13] Permission denied: '{}'".format(g.error_log)
    assert denied in g.output(), g.output()[-3000:]


# -- 2. nobody can open the new files ------------------------------------------------------


def make_directories(g, layout):
    """The new paths are directories: open() fails with EISDIR for root too."""
    for path in (g.access_log, g.error_log):
        os.rename(path, path + ".1")
        os.mkdir(path)
    return g.access_log + ".1", g.error_log + ".1", "EISDIR"


def remove_log_directory(g, layout):
    """The log directory is moved away (rm -r would hide the old lines): ENOENT."""
    os.rename(layout.logs, layout.logs + ".gone")
    old = os.path.join(layout.logs + ".gone", "access.log")
    return old, os.path.join(layout.logs + ".gone", "error.log"), "ENOENT"


UNOPENABLE = {"directory": make_directories, "log directory gone": remove_log_directory}


def unopenable_run(name, layout, how, env):
    g = faults.server(venv(name), layout, nobody=False, env=env)
    with g:
        before = g.worker_pids()
        try:
            with faults.Clients(g.port) as clients:
                faults.wait_for_requests(clients, 50)
                old, old_error, code = UNOPENABLE[how](g, layout)
                g.usr1_master()
                if env:  # the control's master dies of it
                    wait_for(lambda: g.proc.poll() is not None, 10, what="the master's exit")
                faults.wait_for_requests(clients, CONTROL_REQUESTS)
                if not env:  # every process has said it could not reopen (bounded)
                    wait_for(lambda: reported(g, old_error), 10, what="the error lines")
            master = g.proc.poll()
            after = g.worker_pids() if master is None else []
        finally:  # workers whose master died: ours to stop
            orphans = faults.stop_orphans(before) if g.proc.poll() is not None else 0
    result = figures(name, how + (" control" if env else " patched"), g, clients, before, after, old)
    result["orphaned workers"] = orphans
    return g, result, master, old_error, code


def reported(g, old_error):
    """The master and each worker wrote their line for both files into the old error log."""
    with open(old_error, errors="replace") as f:
        errors = f.read()
    needles = ["cannot reopen {} on SIGUSR1".format(path) for path in (g.access_log, g.error_log)]
    return all(errors.count(needle) >= 1 + g.workers for needle in needles)


@pytest.mark.parametrize("how", sorted(UNOPENABLE))
@pytest.mark.parametrize("name", WRONG_OWNER_STACKS)
def test_unopenable_new_files_keep_everything_in_the_old_ones(name, how, layout):
    g, result, master, old_error, code = unopenable_run(name, layout, how, {})
    assert master is None, "the master exited"
    assert result["orphaned workers"] == 0, result
    assert result["failed"] == 0 and result["lost"] == 0 and result["duplicated"] == 0, result
    assert result["new file"] == 0 and result["workers replaced"] == 0, result
    with open(old_error) as f:
        errors = f.read()
    # the master and each worker: one line per file, in the error log it still writes to
    for path in (g.access_log, g.error_log):
        needle = "cannot reopen {} on SIGUSR1".format(path)
        lines = [line for line in errors.splitlines() if needle in line]
        assert len(lines) == 1 + g.workers, "\n".join(lines)
        assert all("({})".format(code) in line for line in lines)
    assert "Traceback" not in errors + g.output()


@pytest.mark.parametrize("how", sorted(UNOPENABLE))
def test_control_unopenable_ends_the_master(how, layout):
    """Unpatched, gunicorn's reopen raises in the master's main loop: the arbiter takes its
    "Unhandled exception in main loop" path, stops the workers and exits."""
    g, result, master, old_error, code = unopenable_run("uvicorn-0.13.1", layout, how, OFF)
    assert master not in (None, 0), "the master survived"
    assert "Unhandled exception in main loop" in g.output()
    # uvicorn 0.13.1's workers do not watch their parent: they go on serving, orphaned,
    # with nobody left to restart or signal them
    assert result["orphaned workers"] == g.workers, result
    assert result["failed"] == 0 and result["lost"] == 0, result


# -- 3. SIGQUIT, gunicorn's quick stop ------------------------------------------------------

CORE_CONF = """
import resource


def on_starting(server):  # the master and every worker it forks: ulimit -c unlimited
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
"""


def core_files(layout):
    """Core files the kernel wrote for processes of this layout (their cwd is apps/).

    Needs a core_pattern naming a file: with a pipe (systemd-coredump, apport) no file
    appears here and the control below fails, as a missing tool must."""
    with open("/proc/sys/kernel/core_pattern") as f:
        pattern = f.read().strip()
    assert not pattern.startswith("|"), "core_pattern pipes cores to {}: need a file".format(pattern)
    directory = os.path.dirname(pattern) if os.path.isabs(pattern) else layout.apps
    prefix = os.path.basename(pattern).split("%")[0]
    return sorted(glob.glob(os.path.join(directory, prefix + "*")))


def start_with_cores(name, layout, env):
    conf = os.path.join(layout.run, "core_conf.py")
    with open(conf, "w") as f:
        f.write(CORE_CONF)
    g = faults.server(venv(name), layout, nobody=False, env=env, extra_args=["-c", conf])
    return g.start()


def replaced(g, pid):
    """The worker is gone and its successor runs: it holds the app's log, opened when it
    imported the app, after init_signals. Before that it has the master's inherited handlers
    and a SIGQUIT from the master's quick stop is lost, patched or not, as for gunicorn's
    own workers."""
    return pid not in g.worker_pids() and g.workers_write_to(g.app_log)


def exited_cleanly(g, pid):
    """gunicorn logs this line when a worker's code returns or raises SystemExit; a worker
    killed by a signal (SIGKILL, a core dump) never writes it."""
    with open(g.error_log) as f:
        return "[{}] [INFO] Worker exiting (pid: {})".format(pid, pid) in f.read()


def quick_stop(g):
    """SIGINT to the master, gunicorn's quick stop: SIGQUIT to every worker, SIGKILL to those
    still there after --graceful-timeout (5 s here). Returns the master's exit code, the
    workers it had and how long it took."""
    workers = g.worker_pids()
    started = time.monotonic()
    os.kill(g.master_pid, signal.SIGINT)
    code = g.proc.wait(30)
    return code, workers, time.monotonic() - started


@pytest.mark.parametrize("name", sorted(STACKS))
def test_sigquit_to_a_patched_worker_exits_cleanly_without_a_core(name, layout):
    """Before the patch: 0.13.1 keeps the master's handler (SIGQUIT ignored), 0.18.3 has
    SIG_DFL (core dump, the control below), 0.20+ a loop handler that only sets worker.alive
    (the worker stays, the control below)."""
    g = start_with_cores(name, layout, {})
    try:
        pid = g.worker_pids()[0]
        os.kill(pid, signal.SIGQUIT)
        wait_for(lambda: replaced(g, pid), FRESH_WORKERS_DEADLINE, what="the master to replace the worker")
        wait_for(lambda: exited_cleanly(g, pid), 5, what="the worker's exit line")
        g.requests(10, "after-quit")
        code, workers, seconds = quick_stop(g)
    finally:
        g.stop()
    assert code == 0
    assert all(exited_cleanly(g, p) for p in workers), "a worker was killed"
    assert core_files(layout) == []
    assert "Traceback" not in g.output() + open(g.error_log).read()
    print(
        "\nissue-9 SIGQUIT {}: worker {} exited cleanly and was replaced; master SIGINT: exit {} "
        "in {:.1f} s, every worker exited cleanly, cores {}".format(
            name, pid, code, seconds, core_files(layout)
        )
    )


def test_control_sigquit_to_an_unpatched_0_18_3_worker_dumps_core(layout):
    """uvicorn 0.13.3-0.18.3 reset SIGQUIT to its default action in the worker."""
    g = start_with_cores("uvicorn-0.18.3", layout, OFF)
    try:
        pid = g.worker_pids()[0]
        os.kill(pid, signal.SIGQUIT)
        cores = wait_for(lambda: core_files(layout), 30, what="a core file")
        wait_for(lambda: replaced(g, pid), FRESH_WORKERS_DEADLINE, what="the master to replace the worker")
    finally:
        g.stop()
    print("\nissue-9 SIGQUIT control 0.18.3: worker {} dumped {}".format(pid, cores))
    assert len(cores) == 1 and not exited_cleanly(g, pid)


def test_control_sigquit_to_an_unpatched_0_29_0_worker_does_nothing(layout):
    """uvicorn 0.20+ unpatched: SIGQUIT only sets worker.alive, which uvicorn never reads; the
    master's quick stop then waits --graceful-timeout and SIGKILLs its workers."""
    g = start_with_cores("uvicorn-0.29.0", layout, OFF)
    try:
        pid = g.worker_pids()[0]
        os.kill(pid, signal.SIGQUIT)
        with pytest.raises(Timeout):  # bounded: what the patched test waits for never comes
            wait_for(
                lambda: replaced(g, pid), FRESH_WORKERS_DEADLINE, what="the master to replace the worker"
            )
        code, workers, seconds = quick_stop(g)
    finally:
        g.stop()
    print(
        "\nissue-9 SIGQUIT control 0.29.0: worker {} stayed; master SIGINT in {:.1f} s".format(pid, seconds)
    )
    assert not any(exited_cleanly(g, p) for p in workers), "a worker exited by itself"
    assert seconds >= 5  # the graceful timeout, then SIGKILL


# -- 4. a fault the master shares: no hand-over, no restart (issue 15) ---------------------------


@pytest.mark.parametrize("name", WRONG_OWNER_STACKS)
def test_log_directory_gone_under_user_nobody_restarts_no_worker(name, layout):
    """gunicorn as root with --user nobody, the log directory moved away and not re-created:
    the master fails exactly as the workers do (ENOENT), so a fresh worker would not help.
    Every process keeps its old files and says so once; no worker is replaced, every request
    is answered, no line is lost. Then the directory is re-created (root's, 0755, as mkdir
    makes it) and USR1 again: the lines go to the new files (the workers, refused there
    while the master is not, hand over to fresh ones)."""
    g = faults.server(shared_venv(name), layout)
    gone = layout.logs + ".gone"
    old, old_error = os.path.join(gone, "access.log"), os.path.join(gone, "error.log")
    with g:
        before = g.worker_pids()
        with faults.Clients(g.port) as clients:
            faults.wait_for_requests(clients, 50)
            os.rename(layout.logs, gone)
            g.usr1_master()
            wait_for(lambda: reported(g, old_error), 10, what="every process's error lines")
            faults.wait_for_requests(clients, CONTROL_REQUESTS)
            assert g.worker_pids() == before, "a worker was replaced on a fault the master shares"
            kept = figures(name, "log directory gone (nobody)", g, clients, before, g.worker_pids(), old)
            with open(old_error, errors="replace") as f:
                errors = f.read()

            os.mkdir(layout.logs, 0o755)
            g.usr1_master()
            wait_for(
                lambda: faults.ids_in(g.access_log) and len(g.worker_pids()) == g.workers,
                FRESH_WORKERS_DEADLINE,
                what="lines in the re-created access.log",
            )
            faults.wait_for_requests(clients, 50)
        assert g.proc.poll() is None, "the master exited"
        after = g.worker_pids()
    assert kept["failed"] == 0 and kept["lost"] == 0 and kept["duplicated"] == 0, kept
    assert kept["new file"] == 0 and kept["old file"] > 0, kept
    for path in (g.access_log, g.error_log):
        lines = [line for line in errors.splitlines() if "cannot reopen {} on SIGUSR1".format(path) in line]
        assert len(lines) == 1 + g.workers and all("(ENOENT)" in line for line in lines), lines
    assert "stops gracefully" not in errors
    result = faults.line_figures(clients, g.access_log, old)
    assert result["failed"] == 0 and result["lost"] == 0 and result["duplicated"] == 0, result
    assert result["new file"] > 0, result
    print(
        "\nissue-15 figures: " + json.dumps(dict(result, stack=name, replaced=len(set(before) - set(after))))
    )


def test_control_log_directory_gone_under_user_nobody_ends_the_master(layout):
    """Unpatched (0.13.1): gunicorn's own reopen in the master raises FileNotFoundError out of
    its main loop; the master exits and leaves its workers behind."""
    g = faults.server(shared_venv("uvicorn-0.13.1"), layout, env=OFF)
    with g:
        before = g.worker_pids()
        try:
            with faults.Clients(g.port) as clients:
                faults.wait_for_requests(clients, 50)
                os.rename(layout.logs, layout.logs + ".gone")
                g.usr1_master()
                wait_for(lambda: g.proc.poll() is not None, 10, what="the master's exit")
        finally:
            orphans = faults.stop_orphans(before)
    assert g.proc.returncode != 0 and orphans == g.workers
    assert "FileNotFoundError" in g.output() or "No such file or directory" in g.output(), g.output()[-2000:]
