"""A USR1 that comes without a rotation never truncates a log opened with mode "w" (issue 15).

`basicConfig(filename=..., filemode="w")` or a dictConfig handler with "mode": "w" truncates its
file when it is first opened. logrotate's `sharedscripts` with `notifempty`/`size` skipping
some files, a second signal, `check --reopen`, an operator's `kill -USR1`: a USR1 reaches the
process while that file was not rotated. Reopened with its own mode, the live log is
truncated to zero, as gunicorn's own Logger.reopen_files does to every FileHandler of the
process (uvicorn 0.19+ unpatched: the control). The package's reopen always appends.

Real gunicorn and plain uvicorn; USR1 by PID; each wait polls a condition with a deadline.
"""

import os
import signal

import pytest
from stacks import venv

from tools.gunicorn_run import Gunicorn, count_lines, wait_for
from tools.uvicorn_run import Uvicorn, alive
from uvicorn_usr1_patch.procfs import open_inodes

pytestmark = pytest.mark.e2e
W = {"APP_LOG_MODE": "w"}
# One worker: "w" has no O_APPEND, so two processes opening the same file with it would write
# over each other's lines whatever a reopen does.
ONE = 1
OFF = {"UVICORN_USR1_PATCH": "0"}


def fds_on(pid, path):
    """The fd numbers of `pid` open on `path`: a reopen opens the new one before it closes
    the old one, so the set changes."""
    return set(open_inodes(pid, path))


@pytest.mark.parametrize("name", ["uvicorn-0.13.1", "uvicorn-0.54.0"])
def test_gunicorn_usr1_without_rotation_keeps_every_line_of_a_w_log(name, tmp_path):
    with Gunicorn(venv(name), str(tmp_path), env=W, workers=ONE) as g:
        g.requests(10, "before")
        wait_for(lambda: count_lines(g.app_log, "tag=before") == 10, 5, what="the app log lines")
        held = {pid: fds_on(pid, g.app_log) for pid in g.worker_pids()}
        g.usr1_master()  # no rotation
        wait_for(
            lambda: all(fds_on(pid, g.app_log) not in (held[pid], set()) for pid in held),
            10,
            what="every worker to reopen app.log",
        )
        g.requests(10, "after")
        wait_for(lambda: count_lines(g.app_log, "tag=after") == 10, 5, what="the new lines")
        assert count_lines(g.app_log, "tag=before") == 10, "the reopen truncated the live log"
        assert sorted(g.worker_pids()) == sorted(held)


def test_control_gunicorn_0_54_0_truncates_a_w_log_on_usr1(tmp_path):
    """uvicorn 0.19+ unpatched: gunicorn's reopen_files reopens the app's handler with its
    own mode "w": the ten lines written before the signal are gone."""
    with Gunicorn(venv("uvicorn-0.54.0"), str(tmp_path), env=dict(W, **OFF), workers=ONE) as g:
        g.requests(10, "before")
        wait_for(lambda: count_lines(g.app_log, "tag=before") == 10, 5, what="the app log lines")
        g.usr1_master()
        wait_for(lambda: count_lines(g.app_log, "tag=before") == 0, 10, what="the truncation")
        g.requests(10, "after")
        wait_for(lambda: count_lines(g.app_log, "tag=after") == 10, 5, what="the new lines")


def test_plain_uvicorn_usr1_without_rotation_keeps_every_line_of_a_w_log(tmp_path):
    """--log-config with "mode": "w" on the access and error handlers."""
    with Uvicorn(venv("uvicorn-0.54.0"), str(tmp_path), log_mode="w") as u:
        assert u.requests(10, "before") == 0
        wait_for(lambda: count_lines(u.access_log, "tag=before") == 10, 5, what="the access lines")
        held = fds_on(u.main_pid, u.access_log)
        os.kill(u.main_pid, signal.SIGUSR1)  # no rotation
        wait_for(lambda: fds_on(u.main_pid, u.access_log) not in (held, set()), 10, what="the reopen")
        assert u.requests(10, "after") == 0
        wait_for(lambda: count_lines(u.access_log, "tag=after") == 10, 5, what="the new lines")
        assert count_lines(u.access_log, "tag=before") == 10, "the reopen truncated the live log"


def test_control_plain_uvicorn_dies_of_the_same_usr1(tmp_path):
    """Unpatched plain uvicorn has no USR1 handling: the signal's default action ends it."""
    with Uvicorn(venv("uvicorn-0.54.0"), str(tmp_path), log_mode="w", env=OFF) as u:
        assert u.requests(10, "before") == 0
        pid = u.main_pid
        os.kill(pid, signal.SIGUSR1)
        wait_for(lambda: u.proc.poll() is not None, 10, what="the server's death")
        assert u.proc.returncode == -signal.SIGUSR1 and not alive(pid)
