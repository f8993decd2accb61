"""Reading Linux's /proc: one process's command line, stat, status, environment and open files.

Shared by `check` and the test harness (tools/gunicorn_run.py). Every read is bounded, so a
/proc file (or a path someone swapped for /dev/zero) cannot grow the reader without limit.
Strings keep undecodable bytes as surrogates (os.fsdecode's surrogateescape), so a name is
never lost; escape() makes them printable. Python 3.6+, stdlib only.
"""

import os
import signal

# /proc/PID/{stat,status,cmdline,environ} are a few KiB; an environment may hold more.
LIMIT = 1 << 20


def read_bytes(path, limit=LIMIT):
    """At most `limit` bytes of `path` (OSError when it cannot be opened)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        chunks, size = [], 0
        while size < limit:
            chunk = os.read(fd, min(65536, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path, limit=LIMIT):
    return os.fsdecode(read_bytes(path, limit))


def escape(text):
    """`text` with undecodable bytes as \\xNN and control characters escaped: safe to print."""
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode
            out.append("\\x{:02x}".format(code - 0xDC00))
        elif char == "\\":
            out.append("\\\\")
        elif char.isprintable():
            out.append(char)
        else:  # a newline in a file name must not start a line of the report
            out.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def _proc(pid, *parts):
    return os.path.join("/proc", str(pid), *parts)


def exists(pid):
    return os.path.isdir(_proc(pid))


def command_line(pid):
    """argv of `pid` ([] for a kernel thread or a zombie)."""
    return [a for a in read_text(_proc(pid, "cmdline")).split("\0") if a]


def stat_fields(pid):
    """/proc/PID/stat from field 3 on (state is [0], ppid [1], start time, field 22, is [19])."""
    line = read_text(_proc(pid, "stat"))
    # the command name (field 2) is in parentheses and may hold spaces or ')': split after the last ')'
    return line[line.rindex(")") + 2 :].split()


def parent_pid(pid):
    return int(stat_fields(pid)[1])


def start_time(pid):
    """Field 22 of /proc/PID/stat: clock ticks after boot. A recycled PID has another one."""
    return int(stat_fields(pid)[19])


def is_zombie(pid):
    return stat_fields(pid)[0] in ("Z", "X")


def children(pid):
    """Live (not zombie) child PIDs, sorted: /proc/PID/task/*/children, else a scan of /proc."""
    found = set()
    try:
        for tid in os.listdir(_proc(pid, "task")):
            found.update(int(c) for c in read_text(_proc(pid, "task", tid, "children")).split())
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN, or the process is gone
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if parent_pid(int(entry)) == pid:
                        found.add(int(entry))
                except (OSError, ValueError):
                    continue
    alive = []
    for child in sorted(found):
        try:
            if not is_zombie(child):
                alive.append(child)
        except (OSError, ValueError, IndexError):  # exited meanwhile
            continue
    return alive


def status(pid):
    """/proc/PID/status as {key: value string}."""
    found = {}
    for line in read_text(_proc(pid, "status")).splitlines():
        key, _, value = line.partition(":")
        found[key] = value.strip()
    return found


def signal_masks(pid):
    """{'SigBlk': int, 'SigIgn': int, 'SigCgt': int} from /proc/PID/status."""
    found = status(pid)
    return {key: int(found[key], 16) for key in ("SigBlk", "SigIgn", "SigCgt")}


def signal_bit(signum):
    return 1 << (int(signum) - 1)


def catches_usr1(pid):
    """True when the process has a handler for SIGUSR1; False when not, or when it is gone."""
    try:
        return bool(signal_masks(pid)["SigCgt"] & signal_bit(signal.SIGUSR1))
    except (OSError, KeyError, ValueError):
        return False


def user_ids(pid):
    """(real uid, effective uid, real gid, effective gid, supplementary groups) of `pid`."""
    found = status(pid)
    uids = [int(u) for u in found["Uid"].split()]
    gids = [int(g) for g in found["Gid"].split()]
    groups = [int(g) for g in found.get("Groups", "").split()]
    return uids[0], uids[1], gids[0], gids[1], groups


def systemd_unit(pid):
    """The systemd unit whose cgroup holds the process ('app.service'), or None."""
    try:
        text = read_text(_proc(pid, "cgroup"))
    except OSError:
        return None
    for line in text.splitlines():
        for part in reversed(line.rpartition(":")[2].split("/")):
            if part.endswith((".service", ".scope")):
                return part
    return None


def environ(pid):
    """The environment `pid` was exec'd with (a forked worker shares its master's)."""
    found = {}
    for entry in read_text(_proc(pid, "environ")).split("\0"):
        key, sep, value = entry.partition("=")
        if sep:
            found[key] = value
    return found


def exe(pid):
    """The executable `pid` runs, or None when it cannot be read (another user's process)."""
    try:
        return os.readlink(_proc(pid, "exe"))
    except OSError:
        return None


def cwd(pid):
    return os.readlink(_proc(pid, "cwd"))


def in_root(pid, path):
    """`path` as the process sees it (its mount namespace, its chroot)."""
    return _proc(pid, "root") + path


def mapped_files(pid):
    """Paths of the files mapped into `pid` (shared libraries, extension modules)."""
    found = set()
    for line in read_text(_proc(pid, "maps"), limit=8 * LIMIT).splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/"):
            found.add(parts[5])
    return found


def fds(pid):
    """The open file descriptor numbers of `pid` (OSError when /proc/PID/fd cannot be read)."""
    return sorted(int(fd) for fd in os.listdir(_proc(pid, "fd")))


def fd_target(pid, fd):
    """What fd points to: a path (ending in ' (deleted)' once unlinked), 'pipe:[..]', ..."""
    return os.readlink(_proc(pid, "fd", str(fd)))


def fd_stat(pid, fd):
    """os.stat of the open file itself, whatever its name is now."""
    return os.stat(_proc(pid, "fd", str(fd)))


def fd_flags(pid, fd):
    """The open(2) flags of `fd` (O_APPEND, O_WRONLY...), from /proc/PID/fdinfo."""
    for line in read_text(_proc(pid, "fdinfo", str(fd))).splitlines():
        if line.startswith("flags:"):
            return int(line.split(":", 1)[1].strip(), 8)
    return 0


def open_inodes(pid, path_prefix):
    """{fd: (inode, link)} for fds of `pid` whose link starts with `path_prefix`."""
    result = {}
    try:
        numbers = fds(pid)
    except OSError:
        return result
    for fd in numbers:
        try:
            link = fd_target(pid, fd)
            if link.startswith(path_prefix):
                result[fd] = (fd_stat(pid, fd).st_ino, link)
        except OSError:
            continue
    return result


def writes_to(pid, path):
    """True when process `pid` holds an fd on the file now at `path` (same inode)."""
    try:
        inode = os.stat(path).st_ino
    except OSError:
        return False
    return any(ino == inode for ino, _ in open_inodes(pid, "/").values())


def start_epoch(pid):
    """When `pid` started, in seconds since the epoch (boot time + field 22)."""
    for line in read_text("/proc/stat").splitlines():
        if line.startswith("btime "):
            return int(line.split()[1]) + start_time(pid) / float(os.sysconf("SC_CLK_TCK"))
    raise OSError("no btime in /proc/stat")
