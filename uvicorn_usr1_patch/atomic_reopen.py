"""Reopen log files so that a failure can never make things worse.

gunicorn's Logger.reopen_files closes each FileHandler's stream first and opens the path
afterwards. When the open fails (a logrotate `create` line whose owner does not match
gunicorn's --user, a removed directory, a full disk, EMFILE), the handler is left without a
stream: every later record re-tries the open inside FileHandler.emit and raises into the
request (HTTP 500), and in the master the exception ends gunicorn's main loop.

Here the new stream is opened first and swapped in, under the handler's lock, only when
the open worked; the old stream is closed after the swap. When the open fails, the handler
keeps writing to the old stream (no record is lost, nothing is raised) and one error line
names the path, the errno, the process's user and the likely fix.

The code between the BEGIN/END markers is carried verbatim into the versioned diffs
(patches/uvicorn-*.diff, made by tools/make_patches.py): stdlib only, Python 3.6+.
"""

import errno
import logging
import os
import sys

# BEGIN uvicorn-usr1-patch carried code: atomic_reopen


def file_handlers():
    """Every logging.FileHandler of every logger, the root logger included, each once."""
    loggers = [logging.getLogger()]
    loggers += [
        lg for lg in list(logging.Logger.manager.loggerDict.values()) if isinstance(lg, logging.Logger)
    ]
    found, seen = [], set()
    for logger in loggers:
        for handler in list(logger.handlers):
            if isinstance(handler, logging.FileHandler) and id(handler) not in seen:
                seen.add(id(handler))
                found.append(handler)
    return found


def reopen_file_handler(handler):
    """Open the handler's path anew and swap the stream in; the OSError when the open fails.

    A handler that has no stream (delay=True, nothing written yet) opens its path on the
    next record anyway, as gunicorn leaves it.
    """
    if handler.stream is None:
        return None
    try:
        new = handler._open()  # the handler's own open: its mode, encoding and errors
    except Exception as exc:  # OSError, or a subclass's own error: the other handlers go on
        return exc
    handler.acquire()
    try:
        old = handler.stream
        handler.stream = new
    finally:
        handler.release()
    close_quietly(old)
    return None


def close_quietly(stream):
    """Flush and close a stream nobody writes to any more; a failed flush (ENOSPC) is lost."""
    try:
        stream.close()
    except Exception:
        pass


def reopen_captured_output(log):
    """gunicorn's --capture-output: sys.stdout/stderr are dup2'ed onto the error log file."""
    cfg = getattr(log, "cfg", None)
    if cfg is None or not getattr(cfg, "capture_output", False) or cfg.errorlog == "-":
        return None
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    try:
        new = open(cfg.errorlog, "a+")
    except OSError as exc:
        return exc
    with log.lock:
        old, log.logfile = getattr(log, "logfile", None), new
        os.dup2(new.fileno(), sys.stdout.fileno())
        os.dup2(new.fileno(), sys.stderr.fileno())
    if old is not None:
        close_quietly(old)
    return None


def reopen_log_files(log=None):
    """Reopen every FileHandler (and gunicorn's captured output when `log` is its Logger).

    Never raises. Returns [(path, OSError)] for each file that could not be opened; each of
    those handlers still writes to its previous file, and one error line says why.
    """
    failures = []
    try:
        if log is not None:
            exc = reopen_captured_output(log)
            if exc is not None:
                failures.append((log.cfg.errorlog, exc))
        for handler in file_handlers():
            exc = reopen_file_handler(handler)
            if exc is not None:
                failures.append((handler.baseFilename, exc))
    except Exception as exc:  # an odd handler: keep what was reopened, say what happened
        failures.append(("?", exc))
    for path, exc in failures:
        report_reopen_failure(path, exc, log)
    return failures


def process_user():
    """'nobody:nogroup (uid 65534, gid 65534)' for this process's effective ids."""
    uid, gid = os.geteuid(), os.getegid()
    user, group = str(uid), str(gid)
    try:
        import grp
        import pwd

        user = pwd.getpwuid(uid).pw_name
        group = grp.getgrgid(gid).gr_name
    except (ImportError, KeyError):
        pass
    return user, group, "{}:{} (uid {}, gid {})".format(user, group, uid, gid)


def reopen_failure_message(path, exc):
    """One line: the path, the errno, who tried, and the likely fix."""
    user, group, who = process_user()
    code = getattr(exc, "errno", None)
    name = errno.errorcode.get(code, "error") if code else type(exc).__name__
    if code in (errno.EACCES, errno.EPERM):
        fix = (
            "the new file must be writable by {user}: make logrotate's `create` match gunicorn's "
            "--user/--group (e.g. `create 0640 {user} {group}`) or rotate with `su {user} {group}`"
        ).format(user=user, group=group)
    elif code == errno.ENOENT:
        fix = "its directory {} is gone: recreate it".format(os.path.dirname(path) or ".")
    elif code in (errno.ENOSPC, errno.EDQUOT):
        fix = "the file system is full: free space"
    elif code in (errno.EMFILE, errno.ENFILE):
        fix = "too many open files: raise the limit (ulimit -n, systemd LimitNOFILE=)"
    elif code == errno.EROFS:
        fix = "the file system is read-only"
    else:
        fix = "see the error"
    return (
        "uvicorn-usr1-patch: cannot reopen {} on SIGUSR1: {} ({}); pid {} runs as {}; "
        "still writing to the previous file; fix: {}"
    ).format(path, getattr(exc, "strerror", None) or exc, name, os.getpid(), who, fix)


def report_reopen_failure(path, exc, log=None):
    """Write the failure line to gunicorn's error log (or the 'uvicorn.error' logger)."""
    try:
        message = reopen_failure_message(path, exc)
        if log is not None and hasattr(log, "error"):
            log.error(message)
        else:
            logging.getLogger("uvicorn.error").error(message)
    except Exception:
        pass


def atomic_reopen_files(self):
    """Replacement for gunicorn.glogging.Logger.reopen_files; returns the failures."""
    return reopen_log_files(self)


atomic_reopen_files.uvicorn_usr1_patch = True


def patch_gunicorn_logger(logger_class):
    """Make gunicorn's Logger (master and workers) reopen atomically; True when patched."""
    current = logger_class.__dict__.get("reopen_files")
    if getattr(current, "uvicorn_usr1_patch", False):
        return True
    if not callable(current):
        return False
    logger_class.reopen_files = atomic_reopen_files
    logger_class._uvicorn_usr1_patch_original_reopen_files = current
    return True


# END uvicorn-usr1-patch carried code: atomic_reopen


def unpatch_gunicorn_logger(logger_class):
    """Undo patch_gunicorn_logger (for tests and uninstall())."""
    original = logger_class.__dict__.get("_uvicorn_usr1_patch_original_reopen_files")
    if original is None:
        return False
    logger_class.reopen_files = original
    del logger_class._uvicorn_usr1_patch_original_reopen_files
    return True
