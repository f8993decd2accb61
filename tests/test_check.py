"""`python -m uvicorn_usr1_patch check`: never the wrong process, the right verdict for every worker.

Everything runs on real processes: real gunicorn masters from PyPI releases, look-alikes started
here, a PID namespace for PID reuse. The end-to-end tests rotate the access log the way logrotate's
create mode does (rename, create an empty file) and hold the report against what the processes
really do. The logrotate review is in test_check_logrotate.py.
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
from check_cli import REPO, assert_one_line_error, every_format, run_check, run_json, timed_check

from tools import venvs
from tools.gunicorn_run import Gunicorn, count_lines, wait_for
from uvicorn_usr1_patch import check, check_files, check_result, check_verdicts, procfs

HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEM_PYTHON = "/usr/bin/python3"  # readable by `nobody`, unlike pyenv's under /root (0700)


# -- bad input: exit 2, one line, no traceback, within a second -----------------------------------
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


@pytest.mark.parametrize(
    "content, needle",
    [
        ("²\n", "does not hold a pid"),  # str.isdigit() is True for it
        ("١\n", "does not hold a pid"),  # int() reads it as 1
        ("1" * 40, "more than 32 bytes"),
        ("", "does not hold a pid"),
        ("0\n", "does not hold a pid"),
    ],
    ids=["superscript-two", "arabic-indic-one", "too-long", "empty", "zero"],
)
def test_pidfile_must_be_ascii_digits(tmp_path, content, needle):
    pidfile = tmp_path / "gunicorn.pid"
    pidfile.write_bytes(content.encode("utf-8"))
    (result, seconds) = timed_check("--pidfile", pidfile)
    assert_one_line_error(*result, needle=needle)
    assert seconds < 1.0


def test_pid_option_must_be_ascii_digits():
    for pid in ("١", "²", "-1", "0"):
        code, out, err = run_check("--pid", pid)
        assert code == 2 and out == "" and "Traceback" not in err and "not a pid" in err, (pid, err)


def test_hostile_pidfiles_end_within_a_second(tmp_path):
    """/dev/zero (direct and by symlink) grew the old reader to GBs; a FIFO without writer hung it."""
    link = tmp_path / "zero.pid"
    link.symlink_to("/dev/zero")
    fifo = tmp_path / "fifo.pid"
    os.mkfifo(str(fifo))
    for path, needle in (
        (link, "is a symbolic link"),
        ("/dev/zero", "not a regular file (a character device)"),
        (fifo, "not a regular file (a FIFO)"),
        (tmp_path, "not a regular file (a directory)"),
    ):
        (result, seconds) = timed_check("--pidfile", path)
        assert_one_line_error(*result, needle=needle)
        assert seconds < 1.0, (path, seconds)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "0", "ten"])
def test_timeout_must_be_finite_and_positive(value):
    (result, seconds) = timed_check("--pid", os.getpid(), "--reopen", "--timeout", value)
    code, out, err = result
    assert code == 2 and out == "" and "Traceback" not in err and "--timeout" in err, err
    assert seconds < 1.0


# -- the pieces, on plain processes ---------------------------------------------------------------
def test_rotated_names():
    assert check_files.original_names("/l/access.log.1") == ["/l/access.log"]
    assert check_files.original_names("/l/access.log-20240101") == ["/l/access.log"]
    assert check_files.original_names("/l/access.log-2024-01-01-1704067200") == ["/l/access.log"]
    assert check_files.original_names("/l/access-20240101.log") == ["/l/access.log"]
    assert check_files.original_names("/l/access.log") == []
    assert check_files.original_names("/l/worker-3.log") == []  # not a date: a name of its own


def test_what_looks_like_a_log():
    append = os.O_WRONLY | os.O_APPEND
    assert check_files.looks_like_log(append, "/x/anything")
    assert check_files.looks_like_log(os.O_WRONLY, "/x/out")  # `> file` redirection
    assert check_files.looks_like_log(os.O_RDWR, "/x/app.log")
    assert not check_files.looks_like_log(os.O_RDWR, "/tmp/wgunicorn-abc")  # gunicorn's heartbeat file
    assert not check_files.looks_like_log(os.O_RDONLY, "/x/app.log")  # a reader, not a writer


def test_verdicts_from_masks():
    """The masks measured on real workers (see check_verdicts' docstring) -> verdicts."""

    def bits(*names):
        return sum(procfs.signal_bit(getattr(signal, "SIG" + n)) for n in names)

    env = {"worker_class": None, "versions": {}, "patch_pth": None, "patch_env": None}
    env.update(site_packages=None, patch_installed_after_start=False)

    def verdict(role, cgt=0, ign=0, **changes):
        masks = {"SigBlk": 0, "SigIgn": ign, "SigCgt": cgt}
        found = check_verdicts.usr1_verdict(masks, role, dict(env, **changes))
        return found["usr1"], found["usr1_ok"], found["note"] is not None

    master = bits("HUP", "INT", "QUIT", "USR1", "USR2", "TERM", "CHLD", "TTIN", "TTOU", "WINCH")
    assert verdict("master", master) == ("caught", True, False)
    assert verdict("worker", master) == ("inherited", False, False)  # uvicorn 0.13.1 unpatched
    assert verdict("worker", bits("INT", "TERM", "TTIN", "TTOU")) == ("default", False, False)  # 0.18.3
    uvicorn_019 = bits("INT", "QUIT", "USR1", "TERM", "TTIN", "TTOU")  # TTIN/TTOU: the master's
    assert verdict("worker", uvicorn_019) == ("caught", True, True)
    assert verdict("worker", uvicorn_019, versions={"uvicorn": "0.18.3"}) == ("caught", True, False)
    patched = bits("INT", "QUIT", "ABRT", "USR1", "TERM", "TTIN", "TTOU")  # issue 9's worker_signals
    active = dict(patch_pth="/site/uvicorn_usr1_patch.pth", versions={"uvicorn": "0.54.0"})
    assert verdict("worker", patched, **active) == ("caught", True, False)
    assert verdict("worker", patched, versions={"uvicorn": "0.54.0"}) == ("caught", True, True)
    gunicorn_own = bits("INT", "QUIT", "ABRT", "USR1", "TERM", "TTIN", "TTOU", "WINCH")  # sync, gthread, asgi
    assert verdict("worker", gunicorn_own) == ("caught", True, False)
    assert verdict("worker", ign=bits("USR1")) == ("ignored", False, False)


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
            return {f["path"]: f for f in check_files.log_files(child.pid, set())}

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


def test_moved_into_another_directory_is_stale_when_configured(tmp_path):
    """`mv app.log old/app.log` (or logrotate's olddir: old/app.log.1): the name no longer says where
    it came from; a configured log of that name that the process no longer holds does. The control:
    without the configured name it cannot be told from any other file, and is not called stale."""
    log = tmp_path / "app.log"
    (tmp_path / "old").mkdir()
    with open(str(log), "a") as out:
        child = subprocess.Popen(["sleep", "30"], stdout=out, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: procfs.writes_to(child.pid, str(log)), 10, what="the child to hold app.log")
        for moved in (tmp_path / "old" / "app.log", tmp_path / "old" / "app.log.1"):
            os.rename(str(log), str(moved))
            (found,) = check_files.log_files(child.pid, {str(log)}, {str(log)})
            assert (found["path"], found["stale"], found["opened_as"]) == (str(moved), "renamed", str(log))
            log.write_text("")  # re-created, not held by the child: rotated
            (found,) = check_files.log_files(child.pid, {str(log)}, {str(log)})
            assert (found["stale"], found["opened_as"]) == ("rotated", str(log))
            (found,) = check_files.log_files(child.pid, set(), set())  # the control
            assert found["stale"] in (None, "renamed") and found["opened_as"] != str(log)
            os.unlink(str(log))
            os.rename(str(moved), str(log))
        (found,) = check_files.log_files(child.pid, {str(log)}, {str(log)})
        assert found["stale"] is None  # back at its name
    finally:
        child.kill()
        child.wait()


# -- never signal the wrong process ---------------------------------------------------------------
def alive(proc):
    return proc.poll() is None and not procfs.is_zombie(proc.pid)


def test_lookalike_survives_reopen(tmp_path):
    """`exec -a gunicorn-lookalike sleep` writing to a deleted log, its PID in a pidfile: the old check
    sent it USR1 (and killed it), exit 0. Now: refused, exit 2, still alive."""
    victim = tmp_path / "victim.log"
    with open(str(victim), "a") as out:
        proc = subprocess.Popen(
            ["bash", "-c", "exec -a gunicorn-lookalike sleep 1000"], stdout=out, stdin=subprocess.DEVNULL
        )
    try:
        wait_for(lambda: procfs.command_line(proc.pid)[:1] == ["gunicorn-lookalike"], 10, what="the exec")
        victim.unlink()
        pidfile = tmp_path / "v.pid"
        pidfile.write_text("{}\n".format(proc.pid))
        assert_one_line_error(*run_check("--pidfile", pidfile, "--reopen"), needle="does not catch SIGUSR1")
        assert alive(proc)
        code, report = run_json("--pid", proc.pid, "--reopen")  # --json: the refusal as a document
        assert (code, report["status"], report["exit"]) == (2, "unknown", 2)
        assert "does not catch SIGUSR1" in report["summary"] and alive(proc)
    finally:
        proc.kill()
        proc.wait()


LOOKALIKE_WITH_HANDLER = """
import signal, sys, time
signal.signal(signal.SIGUSR1, lambda *a: open(sys.argv[1], "a").write("SIGUSR1\\n"))
signal.signal(signal.SIGUSR2, lambda *a: open(sys.argv[1], "a").write("SIGUSR2\\n"))
open(sys.argv[1], "a").write("ready\\n")
deadline = time.monotonic() + 600
while time.monotonic() < deadline:
    signal.pause()
"""


def test_lookalike_catching_usr1_without_workers_is_not_signalled(tmp_path):
    """A process named gunicorn that catches USR1 but has no gunicorn worker gets nothing."""
    marker = str(tmp_path / "signals")
    proc = subprocess.Popen(
        ["bash", "-c", 'exec -a gunicorn "$0" -c "$1" "$2"', sys.executable, LOOKALIKE_WITH_HANDLER, marker]
    )

    def seen():
        try:
            with open(marker) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    try:
        wait_for(lambda: "ready" in seen(), 10, what="the look-alike's handlers")
        with open(str(tmp_path / "x.log"), "a"):
            pass
        assert_one_line_error(*run_check("--pid", proc.pid, "--reopen"), needle="has no live gunicorn worker")
        os.kill(proc.pid, signal.SIGUSR2)  # ours; a USR1 sent before it would be handled first
        wait_for(lambda: "SIGUSR2" in seen(), 10, what="the marker signal")
        assert seen() == ["ready", "SIGUSR2"] and alive(proc)
    finally:
        proc.kill()
        proc.wait()


def gunicorn_bin(release):
    return os.path.join(stacks.venv(release).bin, "gunicorn")


@pytest.mark.e2e
def test_master_without_workers_and_worker_with_child_told_apart(tmp_path):
    """A real master with zero workers under a wrapper whose command line says gunicorn: the old check
    called it a worker and told the operator to --reopen the wrapper. A real worker with a child
    (a fork of itself) was taken for a master."""
    # 1. zero workers, under `bash -c "... gunicorn ..."`
    pidfile = str(tmp_path / "zero.pid")
    wrapper = subprocess.Popen(
        [
            "bash",
            "-c",
            '"$0" -w 0 -b 127.0.0.1:0 --chdir "$1" --pid "$2" asgi_app:app; echo gunicorn-wrapper-done',
            gunicorn_bin("uvicorn-0.54.0"),
            os.path.join(HERE, "apps"),
            pidfile,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        master = wait_for(lambda: procfs.children(wrapper.pid), 30, what="the master")[0]
        usr1 = procfs.signal_bit(signal.SIGUSR1)
        wait_for(lambda: procfs.signal_masks(master)["SigCgt"] & usr1, 30, what="the arbiter's handlers")
        assert_one_line_error(*run_check("--pid", master, "--reopen"), needle="has no live gunicorn worker")
        code, out, err = run_check("--pid", wrapper.pid, "--reopen")
        assert code == 2 and "Traceback" not in err and "worker of master" not in err, err
        assert alive(wrapper) and procfs.children(wrapper.pid) == [master]
    finally:
        for pid in procfs.children(wrapper.pid):
            os.kill(pid, signal.SIGTERM)
        wrapper.wait(30)

    # 2. a worker whose child is a fork of itself (same command line, same handlers)
    g = Gunicorn(
        stacks.venv("uvicorn-0.54.0"),
        str(tmp_path / "child"),
        worker_class="sync",
        app="wsgi_app:app",
        extra_args=["-c", os.path.join(HERE, "apps", "conf_worker_child.py")],
    ).start()
    grandchildren = []
    try:
        worker = g.worker_pids()[0]
        grandchildren = wait_for(lambda: procfs.children(worker), 10, what="the worker's child")
        assert procfs.command_line(grandchildren[0]) == procfs.command_line(worker)
        needle = "is a gunicorn worker of master {}; pass --pid {}".format(g.master_pid, g.master_pid)
        assert_one_line_error(*run_check("--pid", worker, "--reopen"), needle=needle)
        code, report = run_json("--pid", g.master_pid)
        assert code == 0 and report["workers"] == g.worker_pids()
    finally:
        # the workers' children outlive them (orphans): list them before stopping gunicorn
        leftovers = set(grandchildren + [c for w in g.worker_pids() for c in procfs.children(w)])
        g.stop()
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.e2e
@pytest.mark.parametrize("python", ["3.12", "3.8"], ids=["pidfd", "start-time"])
def test_recycled_pid_never_gets_the_signal(tmp_path, python):
    """In a fresh PID namespace: verify a real master, stop it, let a decoy take its PID, send.

    The gap between validation and send is forced by calling check_target.verify_master and
    check_target.send_usr1 separately (tests/pid_reuse.py); no hook in the package. Python 3.12 sends
    through the pidfd, 3.8 (no os.pidfd_open) re-checks the start time."""
    interpreter = venvs.python(python)
    assert interpreter, "no Python {} under pyenv".format(python)
    venv = stacks.venv("uvicorn-0.54.0")
    proc = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", interpreter, os.path.join(HERE, "pid_reuse.py")]
        + [venv.path, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["decoy_pid"] == result["pid"]  # the PID really was recycled
    assert result["pidfd"] == (python != "3.8")
    assert result["refusal"] and "no signal sent" in result["refusal"]
    assert result["after_check"] == ["ready", "SIGUSR2"]  # check's USR1 never arrived
    assert result["control"] == ["ready", "SIGUSR2", "SIGUSR1", "SIGUSR2"]  # a kill by PID would have


# -- real gunicorn: the verdict for every worker type ---------------------------------------------
# (stack, worker class, app) -> (unpatched USR1 state, its note?, exit) ; patched: caught, no note, 0
WORKER_TYPES = {
    "uvicorn-0.13.1": ("uvicorn-0.13.1", None, "asgi_app:app", ("inherited", False, 1)),
    "uvicorn-0.18.3": ("uvicorn-0.18.3", None, "asgi_app:app", ("default", False, 1)),
    "uvicorn-0.29.0": ("uvicorn-0.29.0", None, "asgi_app:app", ("caught", True, 0)),
    "uvicorn-0.54.0": ("uvicorn-0.54.0", None, "asgi_app:app", ("caught", True, 0)),
    "uvicorn-worker": (
        "uvicorn-worker-0.4.0",
        "uvicorn_worker.UvicornWorker",
        "asgi_app:app",
        ("caught", True, 0),
    ),
    "gunicorn-sync": ("uvicorn-0.54.0", "sync", "wsgi_app:app", ("caught", False, 0)),
    "gunicorn-gthread": ("uvicorn-0.54.0", "gthread", "wsgi_app:app", ("caught", False, 0)),
    "gunicorn-asgi": ("uvicorn-worker-0.4.0", "asgi", "asgi_app:asgi3", ("caught", False, 0)),
}


def start(workdir, stack, patched, worker_class=None, app="asgi_app:app", extra_args=()):
    env = {} if patched else {"UVICORN_USR1_PATCH": "0"}
    worker_class = worker_class or stacks.STACKS[stack].worker
    return Gunicorn(
        stacks.venv(stack), str(workdir), worker_class=worker_class, app=app, env=env, extra_args=extra_args
    ).start()


@pytest.mark.e2e
@pytest.mark.parametrize("patched", [False, True], ids=["unpatched", "patched"])
@pytest.mark.parametrize("worker_type", sorted(WORKER_TYPES))
def test_verdict_for_every_worker_type(tmp_path, worker_type, patched):
    stack, worker_class, app, (state, note, status) = WORKER_TYPES[worker_type]
    gunicorn_own = worker_type.startswith("gunicorn-")  # the patch leaves them alone
    if patched and not gunicorn_own:
        state, note, status = "caught", False, 0
    g = start(tmp_path, stack, patched, worker_class, app)
    try:
        code, report = run_json("--pidfile", g.pidfile)
        workers = [p for p in report["processes"] if p["role"] == "worker"]
        assert report["workers"] == g.worker_pids() and len(workers) == 2
        assert [(p["usr1"], p["note"] is not None) for p in workers] == [(state, note)] * 2, workers
        assert code == status, report["problems"]
        kind = workers[0]["kind"]
        if gunicorn_own:
            assert kind.startswith("gunicorn's own worker ({})".format(worker_class)), kind
        else:
            assert kind.endswith("patched" if patched and state == "caught" else "unpatched"), kind
        code, text, _ = run_check("--pid", g.master_pid)
        assert code == status
        assert text.splitlines()[-3].startswith("verdict: " + ("OK" if status == 0 else "PROBLEM"))
        if note:
            assert "note: reopens inside the signal handler" in text
    finally:
        g.stop()


def rotate(g):
    """logrotate's create mode: rename, then an empty file under the old name."""
    os.rename(g.access_log, g.access_log + ".1")
    open(g.access_log, "w").close()


def stale_by_pid(report):
    return {
        p["pid"]: sorted((f["path"], f["stale"], f["opened_as"]) for f in p["files"] if f["stale"])
        for p in report["processes"]
    }


# the stacks -> what `check` must call a worker's USR1 action there, unpatched
RELEASES = {
    # USR1 reaches the master's inherited Python handler: caught, yet the worker never reopens
    "uvicorn-0.13.1": "inherited",
    # gunicorn's handlers reset to SIG_DFL: USR1 kills the worker
    "uvicorn-0.18.3": "default",
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

        rotate(g)
        expected = [(g.access_log + ".1", "rotated", g.access_log)]
        code, report = run_json("--pidfile", g.pidfile)
        assert code == 1
        assert stale_by_pid(report) == {pid: expected for pid in [g.master_pid] + workers}
        code, text, _ = run_check("--pid", g.master_pid)
        assert code == 1
        assert "access.log.1 STALE(rotated from access.log)" in text
        assert text.strip().splitlines()[-3].startswith("verdict: PROBLEM: 3 of 3 processes")
        # looking disturbed nothing
        assert g.worker_pids() == workers
        assert "Handling signal: usr1" not in open(g.error_log).read()

        code, result = run_json("--pid", g.master_pid, "--reopen", "--timeout", 2)
        render_text = check.render_reopen(result)
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
            assert "access.log.1 STALE(deleted; was access.log)" in check.render(report)
        else:
            # the control: USR1 kills the workers; respawned ones write to the new file
            assert (code, result["workers_gone"]) == (1, workers)
            assert not result["after"]["ok"]  # the respawned workers die of the next USR1 too
            assert not set(result["after"]["workers"]) & set(workers)
            assert in_new == 3
            respawned = g.worker_pids()
            code, text, _ = run_check("--pid", g.master_pid, "--reopen")
            assert "reopen: FAILED: workers {}, {} died on USR1".format(*workers) in render_text
            assert [p["usr1"] for p in result["after"]["processes"]] == ["caught", "default", "default"]
            # nothing stale now: --reopen does not signal, yet says the workers would die (exit 1)
            assert code == 1 and "reopen: nothing stale, so no USR1 was sent" in text
            assert "USR1 will KILL them" in text and g.worker_pids() == respawned
    finally:
        g.stop()


@pytest.mark.e2e
def test_non_utf8_log_name_and_pidfile_warning(tmp_path):
    """A log file whose name is not UTF-8 (it crashed the text output), and one the terminal cannot
    show: reported, escaped, no crash."""
    odd = os.path.join(str(tmp_path).encode(), b"acc\xff\xc3\xa9ss.log")  # \xff, then an e-acute
    g = Gunicorn(stacks.venv("uvicorn-0.54.0"), str(tmp_path))
    g.access_log = os.fsdecode(odd)
    g.start()
    try:
        os.chmod(g.pidfile, 0o666)  # anyone may aim it now
        code, out, err = run_check("--pidfile", g.pidfile)
        assert code == 0 and "Traceback" not in err, err
        assert "acc\\xff\u00e9ss.log" in out
        assert "WARNING: pidfile {} is writable by everyone".format(g.pidfile) in out
        os.environ["PYTHONIOENCODING"] = "ascii"  # LANG=C on an old Python
        try:
            code, out, err = run_check("--pidfile", g.pidfile)
        finally:
            del os.environ["PYTHONIOENCODING"]
        assert code == 0 and "Traceback" not in err and "acc\\xff\\xe9ss.log" in out, err
        code, report = run_json("--pid", g.master_pid)
        paths = [f["path"] for p in report["processes"] for f in p["files"]]
        assert os.path.join(str(tmp_path), "acc\\xff\u00e9ss.log") in paths
    finally:
        g.stop()


@pytest.mark.e2e
def test_permission_denied_is_one_line(tmp_path):
    g = start(tmp_path, "uvicorn-0.18.3", patched=True)
    try:
        assert os.geteuid() == 0, "the permission case needs root to drop to `nobody`"
        assert os.path.exists(SYSTEM_PYTHON) and shutil.which("setpriv")
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
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                universal_newlines=True,
                timeout=60,
            )
        finally:
            shutil.rmtree(copy)
        assert_one_line_error(proc.returncode, proc.stdout, proc.stderr, needle="permission denied")
    finally:
        g.stop()


@pytest.mark.e2e
def test_environment_of_python_m_gunicorn_found_on_path(tmp_path):
    """`python -m gunicorn` typed in a shell: argv[0] is a bare "python"; the site-packages read is
    that of the first `python` on gunicorn's PATH (the venv's), not of every PATH entry."""
    venv = stacks.venv("uvicorn-0.54.0")
    pidfile = str(tmp_path / "g.pid")
    env = dict(os.environ, PATH="{}:/usr/bin:/bin".format(venv.bin))  # /usr/bin has a python3 too
    env.pop("PYTHONPATH", None)
    cmd = ["python", "-m", "gunicorn", "-w", "1", "-b", "127.0.0.1:0", "--pid", pidfile]
    cmd += ["--chdir", os.path.join(HERE, "apps"), "-k", "uvicorn.workers.UvicornWorker", "asgi_app:app"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: os.path.exists(pidfile), 30, what="gunicorn's pidfile")
        assert procfs.command_line(proc.pid)[0] == "python"
        found = check_verdicts.environment(proc.pid)
        assert found["site_packages"] == venv.site_packages()
        assert found["versions"]["uvicorn"] == "0.54.0" and found["versions"]["gunicorn"] == "23.0.0"
        assert found["patch_pth"] and found["worker_class"] == "uvicorn.workers.UvicornWorker"
    finally:
        proc.terminate()
        proc.wait(30)


# -- plain uvicorn (issue 11): --pid of its main process, reported like a gunicorn master ---------
def test_uvicorn_lookalike_is_refused():
    """`exec -a uvicorn sleep`: named like uvicorn, not Python: exit 2 even without --reopen."""
    proc = subprocess.Popen(["bash", "-c", "exec -a uvicorn sleep 1000"], stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: procfs.command_line(proc.pid)[:1] == ["uvicorn"], 10, what="the exec")
        for args in (["--pid", proc.pid], ["--pid", proc.pid, "--reopen"]):
            assert_one_line_error(*run_check(*args), needle="is named uvicorn but runs")
            assert alive(proc)
    finally:
        proc.kill()
        proc.wait()


def test_plain_verdicts_from_masks():
    env = {"worker_class": None, "versions": {"uvicorn": "0.54.0"}, "patch_env": None}
    env.update(
        site_packages="/site", patch_pth="/site/uvicorn_usr1_patch.pth", patch_installed_after_start=False
    )
    off = dict(env, patch_env="0")
    usr1 = procfs.signal_bit(signal.SIGUSR1)

    def verdict(role, mode, cgt, environment=env):
        found = check_verdicts.plain_verdict(
            {"SigBlk": 0, "SigIgn": 0, "SigCgt": cgt}, role, mode, environment
        )
        return found["usr1"], found["usr1_ok"], found["problem"]

    assert verdict("master", "single", 0) == ("default", False, "USR1 kills the server")
    assert verdict("master", "single", usr1) == ("caught", True, None)
    assert verdict("master", "workers", 0, off)[:2] == ("default", False)  # uvicorn <= 0.29
    assert verdict("master", "workers", usr1, off)[:2] == ("swallowed", False)  # 0.30+: queued, dropped
    assert verdict("master", "workers", usr1) == ("caught", True, None)
    assert verdict("worker", "workers", 0)[:2] == ("default", False)
    assert verdict("worker", "reload", usr1) == ("caught", True, None)


# (release, mode, patched) -> (exit status, USR1 state of the main process, of the workers, --reopen:
# "refused" (exit 2, nothing signalled), "reopened" (exit 0, new lines in the new file) or "stale"
# (sent, exit 1, the control: new lines in the rotated file))
PLAIN = {
    ("0.54.0", "single", False): (1, "default", None, "refused"),
    ("0.54.0", "single", True): (0, "caught", None, "reopened"),
    ("0.54.0", "workers", False): (1, "swallowed", "default", "stale"),
    ("0.54.0", "workers", True): (0, "caught", "caught", "reopened"),
    ("0.54.0", "reload", False): (1, "default", "default", "refused"),
    ("0.54.0", "reload", True): (0, "caught", "caught", "reopened"),
    ("0.29.0", "single", False): (1, "default", None, "refused"),
    ("0.29.0", "workers", False): (1, "default", "default", "refused"),
    ("0.29.0", "workers", True): (0, "caught", "caught", "reopened"),
}


@pytest.mark.e2e
@pytest.mark.parametrize("release, mode, patched", sorted(PLAIN), ids=lambda v: str(v))
def test_plain_uvicorn_check_and_reopen(tmp_path, release, mode, patched):
    from tools import uvicorn_run
    from tools.uvicorn_run import OFF, Uvicorn, family_venv

    status, main_state, worker_state, reopen = PLAIN[release, mode, patched]
    with Uvicorn(family_venv(release), str(tmp_path), mode=mode, env=None if patched else OFF) as server:
        main, workers = server.main_pid, server.worker_pids()
        code, report = run_json("--pid", main)
        assert (code, report["server"], report["mode"], report["workers"]) == (
            status,
            "uvicorn",
            mode,
            workers,
        )
        states = [p["usr1"] for p in report["processes"]]
        assert states == [main_state] + [worker_state] * len(workers), report["processes"]
        code, text, _ = run_check("--pid", main)
        verdict = text.splitlines()[-3]
        assert code == status and verdict.startswith("verdict: " + ("OK" if status == 0 else "PROBLEM"))
        if mode == "single" and not patched:
            assert verdict == "verdict: PROBLEM: USR1 kills the server: {}".format(main)
        if workers:  # a worker is no main process: check names the one to pass
            needle = "is a uvicorn worker of main process {}; pass --pid {}".format(main, main)
            assert_one_line_error(*run_check("--pid", workers[0], "--reopen"), needle=needle)

        assert server.requests(5, "before") == 0
        server.rename_logs()
        args = ["--pid", main, "--reopen", "--timeout", 10 if reopen == "reopened" else 2]
        if reopen == "refused":
            assert_one_line_error(*run_check(*args), needle="does not catch SIGUSR1: USR1 would kill it")
        else:
            code, result = run_json(*args)
            assert result["usr1_sent_to"] == main and result["after"]["workers"] == workers
            assert (code, result["cleared"]) == ((0, True) if reopen == "reopened" else (1, False))
        assert uvicorn_run.alive(main) and server.proc.poll() is None
        assert server.worker_pids() == workers and all(uvicorn_run.alive(pid) for pid in workers)
        assert server.requests(5, "after") == 0
        old, new = server.access_log + ".1", server.access_log
        wait_for(lambda: count_lines(old, "tag=after") + count_lines(new, "tag=after") == 5, 10, what="lines")
        where = (5, 0) if reopen == "reopened" else (0, 5)  # (new file, rotated file)
        assert (count_lines(new, "tag=after"), count_lines(old, "tag=after")) == where


# -- one result in every format (issue 16): text, --json, --format nagios, --prometheus-textfile ---
COPYTRUNCATE = "{access} {{\n    copytruncate\n}}\n"


def kinds(doc):
    return sorted(f["kind"] for f in doc["findings"] if f["severity"] != "info")


@pytest.mark.e2e
def test_every_format_on_a_patched_gunicorn(tmp_path):
    """healthy, logrotate finding only, stale (rotated), renamed-not-recreated, bad pidfile: each
    gives one status, and each format says it with its own exit status."""
    g = start(tmp_path / "server", "uvicorn-0.54.0", patched=True)
    prom = str(tmp_path / "check.prom")
    try:
        doc = every_format(prom, "--pidfile", g.pidfile)
        assert (doc["status"], kinds(doc)) == ("ok", []), doc["findings"]
        assert doc["target"]["pidfile"] == g.pidfile

        conf = tmp_path / "copytruncate.conf"
        conf.write_text(COPYTRUNCATE.format(access=g.access_log))
        doc = every_format(prom, "--pidfile", g.pidfile, "--logrotate", conf)
        assert (doc["status"], kinds(doc)) == ("warning", ["logrotate-copytruncate"]), doc["findings"]
        (finding,) = doc["findings"]
        assert (finding["path"], finding["line"]) == (str(conf), 2)
        assert doc["counts"]["logrotate_findings"] == 1

        rotate(g)
        doc = every_format(prom, "--pid", g.master_pid)
        assert (doc["status"], kinds(doc), doc["counts"]["stale_files"]) == ("critical", ["stale-file"], 1)
        assert doc["findings"][0]["path"] == g.access_log
        assert "was rotated to {}.1".format(g.access_log) in doc["findings"][0]["text"]
        code, result = run_json("--pid", g.master_pid, "--reopen")
        assert (code, result["status"], result["cleared"]) == (0, "ok", True), result["findings"]

        os.rename(g.access_log, g.access_log + ".2")  # `mv`, nothing re-created: it said "nothing stale"
        doc = every_format(prom, "--pid", g.master_pid)
        assert (doc["status"], kinds(doc)) == ("critical", ["stale-file"]), doc["findings"]
        assert "was renamed to {}.2 and not re-created".format(g.access_log) in doc["findings"][0]["text"]
        code, result = run_json("--pid", g.master_pid, "--reopen")
        assert (code, result["status"]) == (0, "ok"), result["findings"]

        os.mkdir(os.path.join(g.workdir, "old"))  # moved into another directory, same name
        moved = os.path.join(g.workdir, "old", "access.log")
        os.rename(g.access_log, moved)
        doc = every_format(prom, "--pid", g.master_pid)
        assert (doc["status"], kinds(doc)) == ("critical", ["stale-file"]), doc["findings"]
        assert doc["findings"][0]["path"] == g.access_log and moved in doc["findings"][0]["text"]

        bad = tmp_path / "bad.pid"
        bad.write_text("not a pid\n")
        doc = every_format(prom, "--pidfile", bad)
        assert doc["status"] == "unknown" and "does not hold a pid" in doc["summary"]
    finally:
        g.stop()


@pytest.mark.e2e
def test_every_format_when_usr1_kills_the_workers(tmp_path):
    """uvicorn 0.18.3 unpatched: USR1 kills every worker: critical, nothing stale yet."""
    g = start(tmp_path / "server", "uvicorn-0.18.3", patched=False)
    try:
        doc = every_format(str(tmp_path / "check.prom"), "--pidfile", g.pidfile)
        assert (doc["status"], kinds(doc)) == ("critical", ["usr1-kills"]), doc["findings"]
        assert doc["counts"]["workers_not_reopening"] == 2 and doc["counts"]["stale_files"] == 0
        assert "UVICORN_USR1_PATCH=0 in gunicorn's environment turns" in doc["findings"][0]["fix"]
    finally:
        g.stop()


def test_json_and_nagios_on_every_usage_error(tmp_path):
    """Usage errors and an unverifiable target: still one JSON document / one Nagios line."""
    for args, needle in (
        ([], "one of --pid PID or --pidfile PATH is required"),
        (["--pid", "1", "--bogus"], "unrecognized argument: --bogus"),
        (["--pid", "x"], "not a pid"),
        (["--pid", os.getpid()], "is not a gunicorn master"),
    ):
        code, out, err = run_check("--json", *args)
        doc = json.loads(out)
        assert (code, doc["status"], doc["exit"], err) == (2, "unknown", 2, ""), (args, out, err)
        assert needle in doc["summary"], doc
        code, out, err = run_check("--format", "nagios", *args)
        assert (code, err) == (3, "") and out.startswith("USR1 UNKNOWN - ") and needle in out, (args, out)
        code, out, err = run_check(*args)
        assert code == 2 and out == "" and len(err.splitlines()) == 1 and needle in err, (args, err)


def test_no_proc_is_unknown(tmp_path):
    """In a mount namespace without /proc: UNKNOWN in every format, the textfile says check_success 0."""
    prom = tmp_path / "check.prom"
    script = 'umount -l /proc && "$0" -m uvicorn_usr1_patch check --pid 1 "$@"; echo "status=$?"'
    for args, status in ((["--format", "nagios"], 3), (["--json", "--prometheus-textfile", str(prom)], 2)):
        proc = subprocess.run(
            ["unshare", "--mount", "--fork", "sh", "-c", script, sys.executable] + args,
            env=dict(os.environ, PYTHONPATH=REPO),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
            timeout=60,
        )
        out, _, last = proc.stdout.rstrip("\n").rpartition("\n")
        assert last == "status={}".format(status) and proc.stderr == "", proc.stdout + proc.stderr
        if "--json" in args:
            doc = json.loads(out)
            assert doc["status"] == "unknown" and "/proc" in doc["summary"]
        else:
            assert out.startswith("USR1 UNKNOWN - ") and "/proc" in out
    assert "uvicorn_usr1_patch_check_success" in prom.read_text() and " 0\n" in prom.read_text()


def test_prometheus_textfile_is_replaced_atomically(tmp_path):
    """The textfile is written beside its final name and renamed over it: a reader sees the old
    file or the new one, never half; no temp file is left."""
    path = tmp_path / "check.prom"
    path.write_text("old\n")
    inode = os.stat(str(path)).st_ino
    code, _, _ = run_check("--pid", "x", "--prometheus-textfile", path)
    assert code == 2 and os.stat(str(path)).st_ino != inode
    assert os.listdir(str(tmp_path)) == ["check.prom"]
    assert "uvicorn_usr1_patch_check_success" in path.read_text()
    code, _, err = run_check("--pid", "x", "--prometheus-textfile", tmp_path / "missing" / "x.prom")
    assert code == 2 and "cannot write --prometheus-textfile" in err and len(err.splitlines()) == 1
    code, out, err = run_check(
        "--pid", "x", "--json", "--prometheus-textfile", tmp_path / "missing" / "x.prom"
    )
    doc = json.loads(out)  # still the one document
    assert (code, doc["status"], err) == (2, "unknown", "") and "cannot write" in doc["summary"]


def test_summary_counts_come_from_the_findings():
    report = {"master": 1, "workers": [2], "server": "gunicorn", "processes": []}
    findings = [
        {"kind": "logrotate-copytruncate", "severity": "warning", "pids": []},
        {"kind": "logrotate-signal-hup", "severity": "info", "pids": []},
    ]
    counts = check_result.counts_of(findings, report)
    assert counts["logrotate_findings"] == 1 and check_result.status_of(findings) == "warning"


def move_away(path):
    """`mv access.log access.log.2`: renamed, nothing re-created at the old name."""
    os.rename(path, path + ".2")
    assert not os.path.exists(path)


@pytest.mark.e2e
@pytest.mark.parametrize("patched", [False, True], ids=["unpatched", "patched"])
@pytest.mark.parametrize("server", ["gunicorn", "uvicorn-workers"])
def test_renamed_not_recreated_then_reopen(tmp_path, server, patched):
    """A log moved away with nothing at its name was "nothing stale" and --reopen sent nothing.
    Now: exit 1 naming the file; --reopen sends USR1 and the next lines land at the re-created path.
    The controls (unpatched: gunicorn 0.13.1, whose workers never reopen; plain uvicorn 0.54.0,
    whose supervisor swallows USR1): the lines go on into the renamed file, exit 1."""
    from tools.uvicorn_run import OFF, Uvicorn, family_venv

    if server == "gunicorn":
        running = start(tmp_path, "uvicorn-0.54.0" if patched else "uvicorn-0.13.1", patched)
        main = running.master_pid
    else:
        running = Uvicorn(family_venv("0.54.0"), str(tmp_path), mode="workers", env=None if patched else OFF)
        running.start()
        main = running.main_pid
    try:
        running.requests(2, "before")
        move_away(running.access_log)
        code, text, _ = run_check("--pid", main)
        assert code == 1 and "access.log.2 STALE(renamed from access.log; nothing there now)" in text, text
        code, doc = run_json("--pid", main)
        stale = [f for f in doc["findings"] if f["kind"] == "stale-file"]
        assert code == 1 and [f["path"] for f in stale] == [running.access_log], doc["findings"]

        code, result = run_json("--pid", main, "--reopen", "--timeout", 20)
        assert result["usr1_sent_to"] == main  # it said "nothing stale, so no USR1 was sent"
        running.requests(3, "after")
        new, old = running.access_log, running.access_log + ".2"
        wait_for(lambda: count_lines(new, "after") + count_lines(old, "after") == 3, 10, what="the lines")
        if patched:
            assert (code, result["status"], result["cleared"]) == (0, "ok", True), result["findings"]
            assert (count_lines(new, "after"), count_lines(old, "after")) == (3, 0)
        else:
            assert (code, result["status"], result["cleared"]) == (1, "critical", False)
            assert (count_lines(new, "after"), count_lines(old, "after")) == (0, 3)
            # it knew the rest cannot reopen: it stopped waiting long before its 20 s
            assert result["seconds"] < 5, result["seconds"]
    finally:
        running.stop()
