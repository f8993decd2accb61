"""Patch uvicorn's gunicorn worker module (uvicorn.workers, or the uvicorn-worker package) when
it is imported, which gunicorn's master does before it forks, so every worker is covered:

- UvicornWorker.init_signals runs the release's own, then installs worker_usr1 (SIGUSR1
  through the event loop, its first safe point at worker.notify) and worker_signals (the
  others, as gunicorn's workers have them); subclasses that do not override it
  (UvicornH11Worker, a user's) follow;
- the Server class the module serves with gets server_patch's serve wrapper (its first safe
  point, and `worker.server`), where it has an `async def serve` (0.4.6 onwards; 0.4.0-0.4.5
  set worker.server themselves);
- gunicorn's Logger.reopen_files becomes atomic (atomic_reopen), in the master too.

Every surprise (no UvicornWorker, no init_signals) leaves uvicorn untouched and emits one
UvicornUSR1PatchWarning.
"""

import inspect
import threading

from uvicorn_usr1_patch import atomic_reopen, patching, server_patch, warn_skip, worker_signals
from uvicorn_usr1_patch.worker_usr1 import install_worker_usr1


def is_patched(cls):
    return patching.is_patched(cls, "init_signals")


def patch_module(module):
    """Patch module.UvicornWorker, its Server and gunicorn's Logger; True when the worker is."""
    cls = getattr(module, "UvicornWorker", None)
    if not isinstance(cls, type):
        warn_skip(module.__name__, "it defines no UvicornWorker class")
        return False
    if not patch_class(cls):
        return False
    server = getattr(module, "Server", None)
    if isinstance(server, type) and inspect.iscoroutinefunction(vars(server).get("serve")):
        server_patch.patch_class(server)
    patch_gunicorn_logger()
    return True


def patch_gunicorn_logger():
    """The master's own reopen on USR1 (Arbiter.handle_usr1 -> Logger.reopen_files) must not
    end gunicorn's main loop when a new log file cannot be opened."""
    try:
        from gunicorn.glogging import Logger
    except ImportError:
        return  # no gunicorn here: no master to protect
    if not callable(vars(Logger).get("reopen_files")):
        warn_skip("gunicorn's Logger.reopen_files", "it is not a method of gunicorn.glogging.Logger")
        return
    patching.replace(Logger, "reopen_files", lambda original: atomic_reopen_files)


def atomic_reopen_files(self):
    """gunicorn's Logger.reopen_files (the master's, and each worker's), made atomic."""
    return atomic_reopen.reopen_log_files(self)


def patch_class(cls):
    if not callable(vars(cls).get("init_signals")):
        warn_skip("{}.{}".format(cls.__module__, cls.__name__), "it has no init_signals method of its own")
        return False
    patching.replace(cls, "init_signals", wrap_init_signals)
    return True


def wrap_init_signals(original):
    def init_signals(self, *args, **kwargs):
        """uvicorn's own init_signals first, then the loop-safe SIGUSR1 on top."""
        result = original(self, *args, **kwargs)
        if threading.current_thread() is not threading.main_thread():
            warn_skip("the SIGUSR1 handler", "init_signals was called off the main thread")
            return result
        try:
            install_worker_usr1(self)
            safe_point_at_notify(self)
            worker_signals.install_worker_signals(self)
        except Exception as exc:
            warn_skip("the SIGUSR1 handler", "{}: {}".format(type(exc).__name__, exc))
        return result

    return init_signals


def safe_point_at_notify(worker):
    """uvicorn's callback_notify calls worker.notify() from the loop's first tick on: the first
    safe point of every release (0.4.0-0.4.5 have no serve() to wrap). The diffs add the same
    call to callback_notify."""
    notify = getattr(worker, "notify", None)
    if not callable(notify):
        return

    def notify_after_safe_point(*args, **kwargs):
        worker.usr1_reopen.safe_point()
        return notify(*args, **kwargs)

    worker.notify = notify_after_safe_point
