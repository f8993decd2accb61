"""uvicorn_usr1_patch/procfs.py on real /proc files: this process and a child it starts."""

import os
import signal
import subprocess
import sys
import time

import pytest

from uvicorn_usr1_patch import procfs

ME = os.getpid()


def test_command_line_is_this_interpreters():
    argv = procfs.command_line(ME)
    assert argv and os.path.basename(argv[0]).startswith("python")


def test_stat_fields_parent_and_start_time():
    assert procfs.parent_pid(ME) == os.getppid()
    assert procfs.stat_fields(ME)[0] in "RS"  # running, or sleeping on a read
    assert procfs.start_time(ME) > 0
    assert not procfs.is_zombie(ME)


def test_stat_fields_survive_a_command_name_with_parentheses_and_spaces(tmp_path):
    # field 2 is the command name, in parentheses: `a) (b` must not shift the fields after it
    exe = tmp_path / "a) (b"
    os.symlink("/bin/sleep", str(exe))
    child = subprocess.Popen([str(exe), "5"])
    try:
        time.sleep(0.2)
        assert procfs.parent_pid(child.pid) == ME
        assert procfs.stat_fields(child.pid)[0] in "RS"
    finally:
        child.kill()
        child.wait()


def test_status_has_the_ids_of_this_process():
    status = procfs.status(ME)
    assert int(status["Pid"]) == ME
    uid, euid, gid, egid, groups = procfs.user_ids(ME)
    assert (uid, euid, gid, egid) == (os.getuid(), os.geteuid(), os.getgid(), os.getegid())
    assert sorted(groups) == sorted(set(os.getgroups()) | set(groups))


def test_signal_masks_follow_the_handler():
    previous = signal.signal(signal.SIGUSR1, lambda *a: None)
    try:
        assert procfs.catches_usr1(ME)
        assert procfs.signal_masks(ME)["SigCgt"] & procfs.signal_bit(signal.SIGUSR1)
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        assert not procfs.catches_usr1(ME)
        assert procfs.signal_masks(ME)["SigIgn"] & procfs.signal_bit(signal.SIGUSR1)
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_catches_usr1_of_a_gone_process_is_false():
    child = subprocess.Popen(["true"])
    child.wait()
    assert not procfs.exists(child.pid) or not procfs.catches_usr1(child.pid)


def test_signal_bit():
    assert procfs.signal_bit(1) == 1
    assert procfs.signal_bit(signal.SIGUSR1) == 1 << (signal.SIGUSR1 - 1)


def test_environ_exe_cwd_and_root():
    os.environ["PROCFS_UNIT_TEST"] = "seen"
    child = subprocess.Popen(["sleep", "5"], env=dict(os.environ), cwd="/")
    try:
        time.sleep(0.2)
        assert procfs.environ(child.pid)["PROCFS_UNIT_TEST"] == "seen"
        assert procfs.cwd(child.pid) == "/"
        assert os.path.basename(procfs.exe(child.pid)) == "sleep"
        assert procfs.in_root(child.pid, "/etc") == "/proc/{}/root/etc".format(child.pid)
    finally:
        child.kill()
        child.wait()
    assert procfs.exe(2**22 + 1) is None  # above any pid_max: no such process


def test_children_lists_live_children_only():
    live = subprocess.Popen(["sleep", "5"])
    dead = subprocess.Popen(["true"])
    try:
        time.sleep(0.3)  # `dead` is now a zombie: not a child that counts
        found = procfs.children(ME)
        assert live.pid in found
        assert dead.pid not in found
    finally:
        live.kill()
        live.wait()
        dead.wait()


def test_fds_targets_flags_and_inodes(tmp_path):
    path = str(tmp_path / "app.log")
    with open(path, "a") as f:
        fd = f.fileno()
        assert fd in procfs.fds(ME)
        assert procfs.fd_target(ME, fd) == path
        assert procfs.fd_flags(ME, fd) & os.O_APPEND
        assert procfs.fd_stat(ME, fd).st_ino == os.stat(path).st_ino
        assert procfs.open_inodes(ME, str(tmp_path))[fd] == (os.stat(path).st_ino, path)
        assert procfs.writes_to(ME, path)
        os.rename(path, path + ".1")  # what logrotate's create mode does
        assert procfs.fd_target(ME, fd) == path + ".1"
        open(path, "w").close()
        assert not procfs.writes_to(ME, path)
        os.unlink(path + ".1")
        assert procfs.fd_target(ME, fd) == path + ".1 (deleted)"
    assert not procfs.writes_to(ME, str(tmp_path / "never-there"))


def test_mapped_files_hold_the_interpreter():
    mapped = procfs.mapped_files(ME)
    assert os.path.realpath(sys.executable) in mapped or any("libpython" in m for m in mapped)


def test_start_epoch_is_in_the_past():
    assert time.time() - 24 * 3600 * 365 < procfs.start_epoch(ME) <= time.time() + 1


def test_read_bytes_stops_at_the_limit(tmp_path):
    path = tmp_path / "big"
    path.write_bytes(b"x" * 200000)
    assert len(procfs.read_bytes(str(path), limit=1000)) == 1000
    assert len(procfs.read_bytes(str(path))) == 200000
    assert len(procfs.read_bytes("/dev/zero", limit=70000)) == 70000  # bounded even when endless
    with pytest.raises(OSError):
        procfs.read_bytes(str(tmp_path / "missing"))


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("access.log", "access.log"),
        (os.fsdecode(b"a\xffb.log"), "a\\xffb.log"),
        ("two\nlines", "two\\nlines"),
        ("back\\slash", "back\\\\slash"),
        ("tab\there", "tab\\there"),
        ("ümlaut", "ümlaut"),
    ],
)
def test_escape(raw, shown):
    assert procfs.escape(raw) == shown


def test_systemd_unit_of_this_process_is_a_unit_or_none():
    unit = procfs.systemd_unit(ME)
    assert unit is None or unit.endswith((".service", ".scope"))
    assert procfs.systemd_unit(2**22 + 1) is None
