"""`check`: find the gunicorn master (or plain uvicorn main process) to look at, and signal it only
once it is verified.

`check` runs as root, from cron or a monitoring agent. Anyone who can write the pidfile can aim its
`--reopen` at any process, and the process behind a PID read from /proc may have exited and its PID
been reused by the time kill() runs. So the target must prove it is a gunicorn master, and the
signal goes to exactly the process that was checked:
- the pidfile is a regular file (not a symlink, FIFO or device), at most 32 bytes of ASCII digits;
- the target catches SIGUSR1, is not itself a worker of another gunicorn master, and has at least
  one live child that is its gunicorn worker: a fork of it (same command line, executable and
  exec-time environment: a master re-exec'd by USR2 has GUNICORN_FD in its environment) that
  catches one of gunicorn's signals (a `sleep` catches none);
- a pidfd is opened before anything is read (Python 3.9+, Linux 5.1+), and the signal is sent
  through it: a recycled PID can never receive it. Elsewhere the process start time (field 22 of
  /proc/PID/stat) is compared again right before kill().
A plain uvicorn main process (`uvicorn ...`, `python -m uvicorn ...`: uvicorn writes no pidfile, so
it comes by --pid or a pidfile its unit writes) is recognised by check_uvicorn: a Python process
running uvicorn, not a multiprocessing child; its workers (--workers) or reload child (--reload)
are its spawned children. It is signalled only while it catches SIGUSR1 (patched, or uvicorn
0.30+'s supervisor): uvicorn alone never handles USR1, and its default action kills the server
(issue 11). It is looked at either way: the report says USR1 would kill it.
"""

import errno
import os
import pwd
import signal
import stat
import sys

from uvicorn_usr1_patch import check_uvicorn, procfs

PIDFILE_MAX = 32  # bytes: a pid and a newline, with room to spare
HAVE_PIDFD = hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal")
# gunicorn's Arbiter catches these (Arbiter.SIGNALS plus SIGCHLD): what a master looks like.
ARBITER_SIGNALS = ("SIGUSR1", "SIGCHLD", "SIGTTIN", "SIGTTOU")
# A worker catches at least one of these at every moment of its life: before init_signals all the
# master's; TTIN/TTOU (not in Worker.SIGNALS) even while a uvicorn 0.13.3+ worker has reset the others
# and not yet started its server; QUIT/TERM/INT/USR1 once it runs.
WORKER_SIGNALS = ("SIGTERM", "SIGQUIT", "SIGINT", "SIGUSR1", "SIGTTIN", "SIGTTOU")


class CheckError(Exception):
    """Bad input, or a target that must not be signalled: printed as one line, exit 2."""


# -- the pidfile ----------------------------------------------------------------------------------
def read_pidfile(path):
    """(pid, os.stat of the file) from gunicorn's --pid file, read strictly and boundedly."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    shown = path  # main() escapes the whole message
    try:
        fd = os.open(path, flags)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise CheckError(
                "pidfile {} is a symbolic link: pass the file gunicorn writes".format(shown)
            ) from None
        raise CheckError("cannot read pidfile {}: {}".format(shown, err.strerror or err)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CheckError("pidfile {} is not a regular file ({})".format(shown, _file_kind(st.st_mode)))
        data = os.read(fd, PIDFILE_MAX + 1)
    finally:
        os.close(fd)
    if len(data) > PIDFILE_MAX:
        raise CheckError("pidfile {} holds more than {} bytes: not a pid".format(shown, PIDFILE_MAX))
    digits = data.strip(b" \t\r\n")
    # ASCII digits only: str.isdigit() also takes "²" and int() takes "١" (Arabic-Indic one)
    if not digits or any(byte not in b"0123456789" for byte in digits) or int(digits) <= 0:
        raise CheckError("pidfile {} does not hold a pid: {}".format(shown, _shown_bytes(data)))
    return int(digits), st


def _shown_bytes(data):
    """The pidfile's bytes as text; main() escapes what is not printable ("\\n", "\\xff")."""
    return "'{}'".format(os.fsdecode(data)) if data else "(empty)"


def _file_kind(mode):
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _user(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return "uid {}".format(uid)


def _others_can_write(st, uid, gid, directory):
    """Why a user other than `uid` (or root) can change this file or directory, or None."""
    sticky = directory and st.st_mode & stat.S_ISVTX  # /tmp: only a file's owner may replace it
    if st.st_uid not in (0, uid):
        return "owned by {}".format(_user(st.st_uid))
    if st.st_mode & 0o002 and not sticky:
        return "writable by everyone"
    if st.st_mode & 0o020 and st.st_gid != gid and not sticky:
        return "writable by group {}".format(st.st_gid)
    return None


def pidfile_warnings(path, st, master_uid, master_gid):
    """Lines warning that someone other than the master's user can aim the pidfile elsewhere."""
    found = []
    why = _others_can_write(st, master_uid, master_gid, directory=False)
    if why:
        found.append("pidfile {} is {}".format(path, why))
    directory = os.path.dirname(os.path.abspath(path))
    try:
        why = _others_can_write(os.stat(directory), master_uid, master_gid, directory=True)
    except OSError:
        why = None
    if why:
        found.append("the pidfile's directory {} is {}".format(directory, why))
    if found:
        found[-1] += " (the master runs as {}): whoever can write it can aim check at another process".format(
            _user(master_uid)
        )
    return found


# -- is it a gunicorn master? ---------------------------------------------------------------------
def _mentions_gunicorn(argv):
    return any("gunicorn" in os.path.basename(arg) for arg in argv[:4])


def same_program(argv, other):
    """True when `other` runs what `argv` runs: a fork, or setproctitle's master/worker titles."""
    if argv == other:
        return True
    # with setproctitle gunicorn names them "gunicorn: master [app]" and "gunicorn: worker [app]"
    titles = [" ".join(a).split(" ", 2) for a in (argv, other)]
    return all(len(t) == 3 and t[0] == "gunicorn:" for t in titles) and titles[0][2] == titles[1][2]


def _catches(masks, *names):
    return all(masks["SigCgt"] & procfs.signal_bit(getattr(signal, name)) for name in names)


def _catches_any(masks, names):
    return any(_catches(masks, name) for name in names)


def _environ(pid):
    try:
        return procfs.environ(pid)
    except OSError:  # another user's process
        return None


class Process(object):
    """What /proc says about one process, read at one moment."""

    def __init__(self, pid):
        self.pid = pid
        self.argv = procfs.command_line(pid)
        self.masks = procfs.signal_masks(pid)
        self.parent = procfs.parent_pid(pid)
        self.zombie = procfs.is_zombie(pid)
        self.exe = procfs.exe(pid)
        self.environ = _environ(pid)

    def is_worker_of(self, master):
        def same(a, b):  # unreadable (another user's process) counts as the same
            return a is None or b is None or a == b

        return (
            self.parent == master.pid
            and not self.zombie
            and same_program(master.argv, self.argv)
            and same(self.exe, master.exe)
            and same(self.environ, master.environ)
            and _catches_any(self.masks, WORKER_SIGNALS)
        )


def workers_of(master):
    """The live children of `master` (a Process) that are its gunicorn workers."""
    found = []
    for child in procfs.children(master.pid):
        try:
            if Process(child).is_worker_of(master):
                found.append(child)
        except (OSError, ValueError, IndexError, KeyError):  # exited meanwhile
            continue
    return found


class Master(object):
    """A verified gunicorn master or uvicorn main process: its pid, its pidfd (or start time) and
    its workers then. server: "gunicorn" or "uvicorn"; mode (uvicorn): "single", "workers" or
    "reload"; refusal: why it must not be signalled (a uvicorn that USR1 would kill), or None."""

    def __init__(self, pid, pidfd, start, workers, uid, gid, server="gunicorn", mode=None, refusal=None):
        self.pid, self.pidfd, self.start = pid, pidfd, start
        self.workers, self.uid, self.gid = workers, uid, gid
        self.server, self.mode, self.refusal = server, mode, refusal

    def close(self):
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def _open_pidfd(pid):
    if not HAVE_PIDFD:
        return None
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        raise CheckError("no such process: {}".format(pid)) from None
    except OSError as err:
        if err.errno in (errno.ENOSYS, errno.EINVAL, errno.EPERM):
            return None  # Linux < 5.1, or a seccomp filter: the start-time check remains
        raise CheckError("cannot open pid {}: {}".format(pid, err.strerror or err)) from None


def _still_the_same(pid, pidfd, start):
    """True when `pid` is still the process first seen (so what /proc said was about it)."""
    if pidfd is not None:
        try:
            signal.pidfd_send_signal(pidfd, 0)  # fails once that process is gone
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process: it exists; the start time decides
            pass
    try:
        return procfs.start_time(pid) == start
    except (OSError, ValueError, IndexError):
        return False


def verify_master(pid):
    """A Master for `pid`, or CheckError saying in one line why it is not a gunicorn master."""
    if not sys.platform.startswith("linux") or not os.path.isdir("/proc/self/fd"):
        raise CheckError("check needs Linux's /proc (this is {})".format(sys.platform))
    if pid <= 0:
        raise CheckError("no such process: {}".format(pid))
    pidfd = _open_pidfd(pid)  # first: from here on, the PID cannot be recycled under our feet
    try:
        master = _verify(pid, pidfd)
    except BaseException:
        if pidfd is not None:
            os.close(pidfd)
        raise
    return master


def _verify(pid, pidfd):
    try:
        start = procfs.start_time(pid)
        target = Process(pid)
        uid, _, gid, _, _ = procfs.user_ids(pid)
    except (OSError, ValueError, IndexError, KeyError):
        raise CheckError("no such process: {}".format(pid)) from None
    shown = " ".join(target.argv)[:100]
    if target.zombie:
        raise CheckError("pid {} has exited (a zombie)".format(pid))
    if check_uvicorn.runs_uvicorn(target.argv) or check_uvicorn.is_spawned_child(target.argv):
        return _verify_uvicorn(target, pidfd, start, uid, gid, shown)
    if not _mentions_gunicorn(target.argv):
        raise CheckError(
            "pid {} is not a gunicorn master or uvicorn main process (it runs: {})".format(pid, shown or "?")
        )
    try:
        parent = Process(target.parent)
    except (OSError, ValueError, IndexError, KeyError):
        parent = None
    if (
        parent is not None
        and _mentions_gunicorn(parent.argv)
        and _catches(parent.masks, *ARBITER_SIGNALS)
        and target.is_worker_of(parent)
    ):
        raise CheckError(
            "pid {} is a gunicorn worker of master {}; pass --pid {}".format(pid, parent.pid, parent.pid)
        )
    usr1 = procfs.signal_bit(signal.SIGUSR1)
    if not target.masks["SigCgt"] & usr1:
        what = (
            "ignores SIGUSR1"
            if target.masks["SigIgn"] & usr1
            else "does not catch SIGUSR1 (it would kill it)"
        )
        raise CheckError("pid {} {}: not a gunicorn master (it runs: {})".format(pid, what, shown))
    workers = workers_of(target)
    if not workers:
        others = procfs.children(pid)
        raise CheckError(
            "pid {} has no live gunicorn worker (children: {}): not a gunicorn master, or all its "
            "workers are restarting; not signalled".format(pid, ", ".join(map(str, others)) or "none")
        )
    if not _still_the_same(pid, pidfd, start):
        raise CheckError("pid {} exited while it was being checked".format(pid))
    return Master(pid, pidfd, start, workers, uid, gid)


def _is_python(exe):
    """The executable is a Python interpreter (`exec -a uvicorn sleep` is not); None: unreadable."""
    name = os.path.basename(exe or "python")
    return name.startswith(("python", "pypy"))


def _verify_uvicorn(target, pidfd, start, uid, gid, shown):
    """A Master for a plain uvicorn main process, or CheckError (check_uvicorn says what it is)."""
    pid = target.pid
    if check_uvicorn.is_spawned_child(target.argv):
        if check_uvicorn.uvicorn_main(target.parent) is not None:
            raise CheckError(
                "pid {} is a uvicorn worker of main process {}; pass --pid {}".format(
                    pid, target.parent, target.parent
                )
            )
        raise CheckError(
            "pid {} is not a gunicorn master or uvicorn main process (it runs: {})".format(pid, shown)
        )
    if not _is_python(target.exe):
        raise CheckError(
            "pid {} is named uvicorn but runs {}, not Python: not signalled".format(pid, target.exe)
        )
    found = check_uvicorn.uvicorn_main(pid)
    if found is None:
        raise CheckError("pid {} exited while it was being checked".format(pid))
    refusal = None
    if not found["catches_usr1"]:
        usr1 = procfs.signal_bit(signal.SIGUSR1)
        what = (
            "ignores SIGUSR1 (it would not reopen)" if target.masks["SigIgn"] & usr1 else "USR1 would kill it"
        )
        refusal = (
            "pid {} is a uvicorn main process ({} mode) that does not catch SIGUSR1: {}; not signalled "
            "(without --reopen, check says how to fix it)".format(pid, found["mode"], what)
        )
    if not _still_the_same(pid, pidfd, start):
        raise CheckError("pid {} exited while it was being checked".format(pid))
    workers = [child["pid"] for child in found["children"]]
    return Master(pid, pidfd, start, workers, uid, gid, "uvicorn", found["mode"], refusal)


def send_usr1(master):
    """Deliver one SIGUSR1 to exactly the verified process, or raise CheckError (nothing sent)."""
    try:
        _send(master)
    except PermissionError:
        raise CheckError(
            "permission denied signalling pid {}: run check as its user or root".format(master.pid)
        ) from None


def _send(master):
    if master.refusal:
        raise CheckError(master.refusal)
    if master.server == "uvicorn" and not procfs.catches_usr1(master.pid):
        # its handler is gone since it was verified (a server shutting down): USR1 would kill it
        raise CheckError(
            "uvicorn main process {} no longer catches SIGUSR1: no signal sent".format(master.pid)
        )
    if master.pidfd is not None:
        try:
            signal.pidfd_send_signal(master.pidfd, signal.SIGUSR1)
        except ProcessLookupError:
            raise CheckError(
                "master {} exited after it was checked: no signal sent".format(master.pid)
            ) from None
        return
    try:
        now = procfs.start_time(master.pid)
    except (OSError, ValueError, IndexError):
        now = None
    if now != master.start:  # gone, or its PID now names another process
        raise CheckError("pid {} is no longer the master that was checked: no signal sent".format(master.pid))
    os.kill(master.pid, signal.SIGUSR1)
