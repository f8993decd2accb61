"""Reopen log files so that a failure can never make things worse.

gunicorn's Logger.reopen_files closes each FileHandler's stream first and opens the path
afterwards. When the open fails (a logrotate `create` owner that is not gunicorn's --user, a
removed directory, a full disk, EMFILE), the handler is left without a stream: every later
record retries the open inside FileHandler.emit and raises into the request (HTTP 500), and
in the master the exception ends gunicorn's main loop.

Here the new stream is opened first and swapped in under the handler's lock; the old one is
closed after the swap. A failed open keeps the old stream (no record lost, nothing raised)
and logs one line naming the path, the errno, the process's user and the likely fix.

A reopen always appends: a handler made with mode "w" (basicConfig(filemode="w"), a
dictConfig "mode": "w") truncated its file when it was first opened, and a USR1 that comes
without a rotation of that file (logrotate's notifempty/size skipping it, a second signal,
an operator's kill -USR1) must not truncate the live log again. A WatchedFileHandler gets the
new file's device and inode, so that its next record does not open the file a second time.

The code between the BEGIN/END markers is carried into the versioned diffs
(patches/uvicorn-*.diff, made by tools/make_patches.py) without its comment-only lines and
docstrings: stdlib only, Python 3.6+.
"""

import errno
import logging
import os
import sys


# BEGIN uvicorn-usr1-patch carried code: atomic_reopen
def write_stderr(line):
    try:  # os.write: no buffered stream, so safe inside a signal handler
        os.write(2, (line + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def reopen_log_files(log=None):
    """Reopen every FileHandler of every logger, and gunicorn's --capture-output file when `log`
    is gunicorn's Logger: open first, swap under the lock, append. Never raises; returns
    [(path, exception)] for the files whose open failed: those keep writing to the old file."""
    failures, old, cfg = [], [], getattr(log, "cfg", None)
    if getattr(cfg, "capture_output", False) and cfg.errorlog != "-":
        try:
            new = open(cfg.errorlog, "a+")
            with log.lock:  # what Python still buffers for stdout/stderr goes to the new file
                os.dup2(new.fileno(), sys.stdout.fileno())
                os.dup2(new.fileno(), sys.stderr.fileno())
                old.append(log.logfile)
                log.logfile = new
        except Exception as exc:
            failures.append((cfg.errorlog, exc))
    loggers = [logging.getLogger()] + list(logging.Logger.manager.loggerDict.values())
    for handler in dict.fromkeys(h for lg in loggers for h in getattr(lg, "handlers", ())):
        if not isinstance(handler, logging.FileHandler) or handler.stream is None:
            continue  # delay=True with nothing written yet opens the path on its first record
        try:
            handler.mode = handler.mode.replace("w", "a")  # a USR1 without a rotation: no truncation
            new = handler._open()  # the handler's own open: its encoding, errors, subclass
        except Exception as exc:
            failures.append((handler.baseFilename, exc))
            continue
        with handler.lock:
            old.append(handler.stream)
            handler.stream = new
            if hasattr(handler, "reopenIfNeeded"):  # WatchedFileHandler: the new inode, no second open
                handler.dev, handler.ino = os.fstat(new.fileno())[2], os.fstat(new.fileno())[1]
    for stream in filter(None, old):
        try:
            stream.close()
        except Exception as exc:  # its last buffered lines could not be written (ENOSPC)
            write_stderr("uvicorn-usr1-patch: closing a previous log file: {!r}".format(exc))
    for path, exc in failures:
        report_reopen_failure(path, exc, log)
    return failures


def report_reopen_failure(path, exc, log):
    """One error line: the path, the errno, who this process runs as; for EACCES, the fix."""
    code, reason = getattr(exc, "errno", None), getattr(exc, "strerror", None) or exc
    message = "uvicorn-usr1-patch: cannot reopen {} on SIGUSR1: {} ({}); pid {} runs as uid {} gid {}; still "
    message += "writing to the previous file"
    message = message.format(
        path, reason, errno.errorcode.get(code, "?"), os.getpid(), os.geteuid(), os.getegid()
    )
    if code in (errno.EACCES, errno.EPERM):
        message += "; fix: logrotate's `create` must name gunicorn's --user and --group, or rotate with `su`"
    try:
        (log if hasattr(log, "error") else logging.getLogger("uvicorn.error")).error(message)
    except Exception:
        write_stderr(message)


# END uvicorn-usr1-patch carried code: atomic_reopen
