"""`check`: which files a process writes its logs to, and which of them are stale.

What counts as a log file: a regular file the process opened for writing (O_WRONLY or O_RDWR, from
/proc/PID/fdinfo) and either in append mode, write-only, or named *.log/*.out/*.err/*.txt. Read-only
files and read-write scratch files (gunicorn's deleted worker heartbeat file) are not logs.

Stale means one of:
  deleted  - the file has no name left (readlink ends in " (deleted)": rotated, compressed, removed);
  rotated  - the fd's file now has a rotated name (access.log.1, access.log-20240101, ...) while the
             original name is another file;
  renamed  - the fd's file has a rotated name and nothing is at the original name (moved away and
             not re-created: `mv access.log access.log.2`, logrotate's nocreate), or it carries the
             name of a log the server was started with, in another directory, and nothing or
             another file is at that log's path (`mv access.log old/`, logrotate's olddir);
  replaced - the name the fd shows now belongs to another inode.
Stale is judged by identity: the name a file was opened as must still name that very inode.
The kernel follows renames, so /proc shows the file's new name; the rotated check therefore strips
rotation suffixes to find the name the file was opened under.
"""

import os
import re
import stat

from uvicorn_usr1_patch import procfs

LOG_SUFFIXES = (".log", ".out", ".err", ".txt")
# A rotation suffix: a separator then digits (".1", "-20240101", "-2024-01-01-1704067200", "_3").
ROTATED_TAIL = re.compile(r"[.\-_][0-9][0-9.\-_]*$")
# dateext with `extension .log`: "access-20240101.log" was "access.log" (six digits at least).
ROTATED_MIDDLE = re.compile(r"[.\-_][0-9][0-9.\-_]{5,}(\.[A-Za-z]+)$")
# gunicorn flags naming log files, so a rotated file whose original was never re-created is still
# recognised as one.
LOG_FLAGS = ("--access-logfile", "--error-logfile", "--log-file")
DELETED = " (deleted)"


def looks_like_log(flags, path):
    mode = flags & os.O_ACCMODE
    if mode == os.O_RDONLY:
        return False
    return bool(flags & os.O_APPEND) or mode == os.O_WRONLY or path.lower().endswith(LOG_SUFFIXES)


def original_names(path):
    """Names `path` may have had before logrotate renamed it, most specific first."""
    directory, name = os.path.split(path)
    found = []
    tail = ROTATED_TAIL.search(name)
    if tail and tail.start() > 0:
        found.append(name[: tail.start()])
    middle = ROTATED_MIDDLE.search(name)
    if middle and middle.start() > 0:
        found.append(name[: middle.start()] + middle.group(1))
    return [os.path.join(directory, n) for n in found]


def _same_file(st, other):
    return (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino)


def configured_namesakes(pid, path, configured, held):
    """Configured log paths `path` may have been opened as, though it sits in another directory:
    same name, or same name once the rotation suffix is off (logrotate's olddir, `mv` into another
    directory), and this process holds nothing at that path any more."""
    names = set([os.path.basename(path)] + [os.path.basename(n) for n in original_names(path)])
    found = []
    for log in sorted(configured):
        if log == path or os.path.basename(log) not in names:
            continue
        try:
            st = os.stat(procfs.in_root(pid, log))
        except OSError:
            st = None
        if st is None or (st.st_dev, st.st_ino) not in held:
            found.append(log)
    return found


def classify(pid, path, st, known_logs, configured=(), held=()):
    """(stale reason or None, the name it was opened under).

    Judged by identity: the name the file was opened as (a configured log of its name, or its own
    name without the rotation suffix) must still name this very file."""
    if path.endswith(DELETED):
        name = path[: -len(DELETED)]
        originals = original_names(name)  # "access.log" for a rotated "access.log.1" that is gone now
        return "deleted", originals[0] if originals else name
    try:
        now = os.stat(procfs.in_root(pid, path))
    except OSError:
        return "deleted", path
    if not _same_file(st, now):
        return "replaced", path
    if path in known_logs:
        return None, path
    for original in configured_namesakes(pid, path, configured, held) + original_names(path):
        try:
            other = os.stat(procfs.in_root(pid, original))
        except OSError:
            # nothing at the name it was opened as: moved away and not re-created (`mv`, logrotate's
            # nocreate, the moment between rename and create); the process writes where no one reads
            return "renamed", original
        if not _same_file(st, other):
            return "rotated", original
    return None, path


def log_files(pid, known_logs, configured=()):
    """[{'fd', 'path', 'stale', 'opened_as'}] for the log files `pid` holds open.

    `configured`: the log paths the server was started with (configured_logs), whose namesakes
    elsewhere are the moved-away files. OSError when /proc/PID/fd cannot be read (another user's
    process, or it is gone).
    """
    held = []
    for fd in procfs.fds(pid):
        try:
            path = procfs.fd_target(pid, fd)
            if not path.startswith("/"):  # pipe:[..], socket:[..], anon_inode:..
                continue
            st = procfs.fd_stat(pid, fd)
            if not stat.S_ISREG(st.st_mode) or not looks_like_log(procfs.fd_flags(pid, fd), path):
                continue
        except OSError:  # closed meanwhile
            continue
        held.append((fd, path, st))
    inodes = set((st.st_dev, st.st_ino) for _, _, st in held)
    found = []
    for fd, path, st in held:
        reason, opened_as = classify(pid, path, st, known_logs, configured, inodes)
        if path.endswith(DELETED):
            path = path[: -len(DELETED)]  # the last name it had, without the kernel's mark
        found.append({"fd": fd, "path": path, "stale": reason, "opened_as": opened_as})
    return found


def configured_logs(pid):
    """Absolute log paths named on gunicorn's command line (relative ones resolved in its cwd)."""
    try:
        argv = procfs.command_line(pid)
        cwd = procfs.cwd(pid)
    except OSError:
        return set()
    paths = set()
    for i, arg in enumerate(argv):
        for flag in LOG_FLAGS:
            value = None
            if arg == flag and i + 1 < len(argv):
                value = argv[i + 1]
            elif arg.startswith(flag + "="):
                value = arg[len(flag) + 1 :]
            if value and value != "-":
                paths.add(os.path.normpath(os.path.join(cwd, value)))
    return paths
