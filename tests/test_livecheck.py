"""`python -m uvicorn_usr1_patch check`: read-only diagnosis of a live gunicorn, and --reopen.

The end-to-end tests rotate the access log of a real gunicorn the way logrotate's create mode does
(rename, create an empty file) and hold the checker's report against what the processes really do:
where the next request lines land, and which worker PIDs survive.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest
import stacks

from tools.gunicorn_run import Gunicorn, count_lines, wait_for
from uvicorn_usr1_patch import livecheck

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEM_PYTHON = "/usr/bin/python3"  # readable by `nobody`, unlike pyenv's under /root


def run_check(*args):
    """The CLI as an operator runs it, from this (tools') Python, not the target's venv."""
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, "-m", "uvicorn_usr1_patch", "check"] + [str(a) for a in args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, proc.stdout, proc.stderr


def run_json(*args):
    code, out, err = run_check("--json", *args)
    assert err == "", err
    return code, json.loads(out)


def assert_one_line_error(code, out, err, needle):
    assert code == 2, (code, out, err)
    assert out == ""
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err, err


# -- bad input: exit 2, one line, no traceback ----------------------------------------------------
def test_no_such_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its PID names no process now
    assert_one_line_error(*run_check("--pid", child.pid), needle="no such process")


def test_not_a_gunicorn_process():
    assert_one_line_error(*run_check("--pid", os.getpid()), needle="is not a gunicorn master")


def test_garbage_and_missing_pidfile(tmp_path):
    garbage = tmp_path / "gunicorn.pid"
    garbage.write_text("not a pid\n")
    assert_one_line_error(*run_check("--pidfile", garbage), needle="does not hold a pid")
    assert_one_line_error(*run_check("--pidfile", tmp_path / "missing.pid"), needle="cannot read pidfile")


def test_usage_error_is_exit_2():
    code, out, err = run_check()
    assert code == 2 and "--pid" in err and "Traceback" not in err


# -- the pieces, on plain processes ---------------------------------------------------------------
def test_rotated_names():
    assert livecheck.original_names("/l/access.log.1") == ["/l/access.log"]
    assert livecheck.original_names("/l/access.log-20240101") == ["/l/access.log"]
    assert livecheck.original_names("/l/access.log-2024-01-01-1704067200") == ["/l/access.log"]
    assert livecheck.original_names("/l/access-20240101.log") == ["/l/access.log"]
    assert livecheck.original_names("/l/access.log") == []
    assert livecheck.original_names("/l/worker-3.log") == []  # not a date: a name of its own


def test_what_looks_like_a_log():
    append = os.O_WRONLY | os.O_APPEND
    assert livecheck.looks_like_log(append, "/x/anything")
    assert livecheck.looks_like_log(os.O_WRONLY, "/x/out")  # `> file` redirection
    assert livecheck.looks_like_log(os.O_RDWR, "/x/app.log")
    assert not livecheck.looks_like_log(os.O_RDWR, "/tmp/wgunicorn-abc")  # gunicorn's heartbeat file
    assert not livecheck.looks_like_log(os.O_RDONLY, "/x/app.log")  # a reader, not a writer


def test_usr1_disposition_from_masks():
    def bits(*names):
        return sum(1 << (int(getattr(signal, n)) - 1) for n in names)

    def state(role, cgt=0, ign=0):
        return livecheck.usr1_disposition({"SigBlk": 0, "SigIgn": ign, "SigCgt": cgt}, role)[:2]

    assert state("worker", cgt=bits("SIGUSR1", "SIGTERM")) == ("caught", True)
    assert state("worker", cgt=bits("SIGUSR1", "SIGTTIN", "SIGTTOU")) == ("inherited", False)
    assert state("master", cgt=bits("SIGUSR1", "SIGTTIN", "SIGTTOU")) == ("caught", True)
    assert state("worker", ign=bits("SIGUSR1")) == ("ignored", False)
    assert state("worker", cgt=bits("SIGTERM")) == ("default", False)


def test_stale_fds_of_a_plain_process(tmp_path):
    """Rename then delete a file a child holds in append mode: rotated, then deleted."""
    log = tmp_path / "app.log"
    with open(str(log), "a") as out, open(str(tmp_path / "data"), "w") as data:
        data.write("x")  # read-only opener below: not a log
        child = subprocess.Popen(
            ["sh", "-c", "exec 3<{}; exec sleep 30".format(tmp_path / "data")],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
    try:

        def files():
            found = livecheck.log_files(child.pid, set())
            return {f["path"]: f for f in found}

        wait_for(lambda: str(log) in files(), 10, what="the child to hold app.log")
        assert files()[str(log)]["stale"] is None
        assert str(tmp_path / "data") not in files()

        os.rename(str(log), str(log) + ".1")
        log.write_text("")  # logrotate's create
        rotated = files()[str(log) + ".1"]
        assert (rotated["stale"], rotated["opened_as"]) == ("rotated", str(log))

        os.unlink(str(log) + ".1")  # compressed and removed
        (deleted,) = files().values()
        assert (deleted["stale"], deleted["path"], deleted["opened_as"]) == (
            "deleted",
            str(log) + ".1",
            str(log),
        )
    finally:
        child.kill()
        child.wait()


# -- real gunicorn --------------------------------------------------------------------------------
# the shared stacks (tests/stacks.py) -> what `check` must call a worker's USR1 action there, unpatched
RELEASES = {
    # USR1 reaches the master's inherited Python handler: caught, yet the worker never reopens
    "uvicorn-0.13.1": "inherited",
    # gunicorn's handlers reset to SIG_DFL: USR1 kills the worker
    "uvicorn-0.18.3": "default",
}


def start(tmp_path, release, patched):
    try:
        venv = stacks.venv(release)
    except LookupError as err:
        pytest.skip(str(err))
    env = {} if patched else {"UVICORN_USR1_PATCH": "0"}
    return Gunicorn(venv, str(tmp_path), env=env).start()


def rotate(g):
    """logrotate's create mode: rename, then an empty file under the old name."""
    os.rename(g.access_log, g.access_log + ".1")
    open(g.access_log, "w").close()


def stale_by_pid(report):
    return {
        p["pid"]: sorted((f["path"], f["stale"], f["opened_as"]) for f in p["files"] if f["stale"])
        for p in report["processes"]
    }


@pytest.mark.e2e
@pytest.mark.parametrize("patched", [False, True], ids=["unpatched", "patched"])
@pytest.mark.parametrize("release", sorted(RELEASES))
def test_check_and_reopen(tmp_path, release, patched):
    unpatched_state = RELEASES[release]
    g = start(tmp_path, release, patched)
    try:
        workers = g.worker_pids()
        g.requests(2, "first")

        # before rotation: nothing stale; USR1 verdict alone decides
        code, report = run_json("--pid", g.master_pid)
        assert report["workers"] == workers
        assert report["stale"] == 0
        usr1 = {p["pid"]: p["usr1"] for p in report["processes"]}
        assert usr1 == dict(
            [(g.master_pid, "caught")] + [(w, "caught" if patched else unpatched_state) for w in workers]
        )
        assert code == (0 if patched else 1)

        rotate(g)
        expected = [(g.access_log + ".1", "rotated", g.access_log)]
        code, report = run_json("--pidfile", g.pidfile)
        assert code == 1
        assert stale_by_pid(report) == {pid: expected for pid in [g.master_pid] + workers}
        code, text, _ = run_check("--pid", g.master_pid)
        assert code == 1
        assert "access.log.1 STALE(rotated from access.log)" in text
        assert text.strip().splitlines()[-1].startswith("verdict: PROBLEM: 3 of 3 processes")
        # looking disturbed nothing
        assert g.worker_pids() == workers
        assert "Handling signal: usr1" not in open(g.error_log).read()

        code, result = run_json("--pid", g.master_pid, "--reopen", "--timeout", 2)
        render_text = livecheck.render_reopen(result)
        after = stale_by_pid(result["after"])
        g.requests(3, "after")
        in_new = count_lines(g.access_log, "after")
        if patched:
            assert (code, result["cleared"], result["workers_gone"]) == (0, True, [])
            assert result["after"]["workers"] == workers
            assert in_new == 3  # and the next lines really land in the new file
        elif unpatched_state == "inherited":
            # the control: USR1 reaches the workers, they keep writing to the rotated file
            assert (code, result["cleared"], result["workers_gone"]) == (1, False, [])
            assert after == dict([(g.master_pid, [])] + [(w, expected) for w in workers])
            assert in_new == 0 and count_lines(g.access_log + ".1", "after") == 3
            os.unlink(g.access_log + ".1")  # compressed and removed: the lines go nowhere now
            code, report = run_json("--pid", g.master_pid)
            gone = [(g.access_log + ".1", "deleted", g.access_log)]
            assert code == 1 and stale_by_pid(report) == dict(
                [(g.master_pid, [])] + [(w, gone) for w in workers]
            )
            assert "access.log.1 STALE(deleted; was access.log)" in livecheck.render(report)
        else:
            # the control: USR1 kills the workers; respawned ones write to the new file
            assert (code, result["workers_gone"]) == (1, workers)
            assert not set(result["after"]["workers"]) & set(workers)
            assert in_new == 3
            respawned = g.worker_pids()
            code, text, _ = run_check("--pid", g.master_pid, "--reopen")
            assert "reopen: FAILED: workers {}, {} died on USR1".format(*workers) in render_text
            assert [p["usr1"] for p in result["after"]["processes"]] == ["caught", "default", "default"]
            # nothing stale now: --reopen does not signal, yet says the workers would die
            assert (code, text.strip().splitlines()[-1]) == (1, "reopen: nothing stale, so no USR1 was sent")
            assert "USR1 will KILL them" in text and g.worker_pids() == respawned
    finally:
        g.stop()


@pytest.mark.e2e
def test_worker_pid_and_permission_denied(tmp_path):
    g = start(tmp_path, "uvicorn-0.18.3", patched=True)
    try:
        assert_one_line_error(*run_check("--pid", g.worker_pids()[0]), needle="--pid {}".format(g.master_pid))
        if os.geteuid() != 0 or not shutil.which("setpriv") or not os.path.exists(SYSTEM_PYTHON):
            return  # the permission case needs root to drop to `nobody`
        # a copy `nobody` can read (the checkout may sit under /root), run as nobody
        copy = tempfile.mkdtemp()
        try:
            os.chmod(copy, 0o755)
            shutil.copytree(
                os.path.join(REPO, "uvicorn_usr1_patch"), os.path.join(copy, "uvicorn_usr1_patch")
            )
            as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
            proc = subprocess.run(
                as_nobody + [SYSTEM_PYTHON, "-m", "uvicorn_usr1_patch", "check", "--pid", str(g.master_pid)],
                env={"PYTHONPATH": copy, "PATH": os.environ["PATH"]},
                cwd=copy,
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            shutil.rmtree(copy)
        assert_one_line_error(proc.returncode, proc.stdout, proc.stderr, needle="permission denied")
    finally:
        g.stop()
