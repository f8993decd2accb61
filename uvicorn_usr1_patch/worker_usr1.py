"""SIGUSR1 in a gunicorn worker running uvicorn: LoopReopen installed by init_signals, whose
reopen is atomic_reopen's, plus the hand-over.

The hand-over: gunicorn as root with --user, and logrotate's `create` naming an owner the
worker cannot write: the master (root) opens gunicorn's new files, the worker cannot
(EACCES/EPERM). The worker then stops gracefully, so that the master forks a fresh worker
holding the files it has just opened; a fresh worker does not reopen at boot, so this cannot
loop. Every other errno (a log directory gone, a full or read-only disk, EMFILE) fails in the
master too: a fresh worker would not help, so every process keeps its old file, says why in
one line, and goes on serving.

uvicorn's shutdown closes every connection that has no request in progress, also one it
accepted a moment ago whose request it has not read yet: that client would get a reset. So
the worker first stops accepting (the master and the other workers keep the listening
socket), serves for half a second what it has accepted, and only then sends itself SIGTERM
(uvicorn's graceful shutdown). While uvicorn is still starting, it first waits for it to
listen (ten seconds at most): a SIGTERM then would reset the connections accepted on the
way out. uvloop closes a listening fd itself when its server closes, while gunicorn's socket
object still holds the number, and uvicorn's shutdown closes that object again: by then the
number may be a file the application opened, so the objects are detached first.

uvicorn's Server is `worker.server`: uvicorn 0.4.0-0.4.5 set it themselves, the diffs add the
line to run(), the package's wrapper of Server.serve sets it (server_patch). The first safe
point, worker.usr1_reopen.safe_point(), is due at uvicorn's callback_notify: the package wraps
worker.notify (worker_patch), the diffs add the call to callback_notify.

The code between the BEGIN/END markers is carried into the versioned diffs, without its
comment-only lines and docstrings (tools/make_patches.py).
"""

import errno
import os
import signal

from uvicorn_usr1_patch.atomic_reopen import reopen_log_files
from uvicorn_usr1_patch.loop_reopen import LoopReopen, running_loop


# BEGIN uvicorn-usr1-patch carried code: worker_usr1
def master_can_open(worker, failures):
    """EACCES/EPERM on gunicorn's own files (a fresh worker inherits them from the master), the
    master another user: a fresh worker has the new files. Any other errno fails there too."""
    log, refused = worker.log, (errno.EACCES, errno.EPERM)
    own = {getattr(h, "baseFilename", None) for lg in (log.error_log, log.access_log) for h in lg.handlers}
    own.add(log.cfg.errorlog if log.cfg.capture_output else None)
    mine = all(path in own and getattr(exc, "errno", 0) in refused for path, exc in failures)
    try:
        return mine and os.stat("/proc/{}".format(worker.ppid)).st_uid != os.geteuid()
    except OSError:
        return False  # cannot tell: keep the old files rather than restart


class WorkerReopen(object):
    """What LoopReopen runs in a worker: reopen; hand over when only the master can open."""

    def __init__(self, worker):
        self.worker, self.handing_over = worker, False

    def __call__(self):
        failures = reopen_log_files(self.worker.log)
        if failures and not self.handing_over and master_can_open(self.worker, failures):
            self.handing_over = True
            self.worker.log.error("uvicorn-usr1-patch: worker %s stops gracefully", os.getpid())
            self.stop_then_terminate(100)  # tenths of a second to wait for uvicorn to listen

    def stop_then_terminate(self, checks):
        """Stop accepting (the other workers still do), serve what was accepted, then SIGTERM."""
        loop, server = running_loop(), getattr(self.worker, "server", None)
        if loop and server and not server.started and checks > 0:
            return loop.call_later(0.1, self.stop_then_terminate, checks - 1)  # uvicorn is starting
        for each in getattr(server, "servers", None) or ():
            each.close()
        # the accepted connections are served for half a second, then uvicorn's graceful shutdown
        return self.terminate() if loop is None else loop.call_later(0.5, self.terminate)

    def terminate(self):
        for listener in self.worker.sockets:  # uvloop closed their fds itself, and the application
            if getattr(listener, "sock", None) is not None:  # may own those numbers now: not closed
                listener.sock.detach()  # twice by uvicorn's shutdown
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown


def install_worker_usr1(worker):
    """In init_signals, after the release's own. worker.usr1_reopen.safe_point() is then due
    at uvicorn's callback_notify (from the loop's first tick on)."""
    worker.usr1_reopen = LoopReopen(WorkerReopen(worker))
    signal.signal(signal.SIGUSR1, worker.usr1_reopen)
    signal.siginterrupt(signal.SIGUSR1, False)  # as gunicorn's workers: no EINTR in a request


# END uvicorn-usr1-patch carried code: worker_usr1
