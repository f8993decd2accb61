"""Wrap UvicornWorker.init_signals (with wrapt) so the worker installs worker_signals, and make
gunicorn's Logger.reopen_files atomic (atomic_reopen) in the master, before it forks.

Imported only when uvicorn's worker module is imported, never at start-up. Every surprise
(no UvicornWorker, no init_signals, wrapt missing or broken) leaves uvicorn untouched and
emits one UvicornUSR1PatchWarning.
"""

import sys
import threading

from uvicorn_usr1_patch import atomic_reopen, warn_skip, worker_signals

_patched = []  # classes patched in this process, for unpatch_all()


def _wrapper_class():
    """wrapt.FunctionWrapper, or None with a warning if wrapt cannot be used."""
    try:
        import wrapt

        return wrapt.FunctionWrapper
    except Exception as exc:  # not installed, or its import fails
        warn_skip("patching UvicornWorker", "wrapt is unusable ({}: {})".format(type(exc).__name__, exc))
        return None


def is_patched(cls):
    return getattr(vars(cls).get("init_signals"), "_self_uvicorn_usr1_patch", False)


def patch_module(module):
    """Patch module.UvicornWorker and gunicorn's Logger; True when the worker is patched."""
    cls = getattr(module, "UvicornWorker", None)
    if not isinstance(cls, type):
        warn_skip(module.__name__, "it defines no UvicornWorker class")
        return False
    if not patch_class(cls):
        return False
    patch_gunicorn_logger()
    return True


def patch_gunicorn_logger():
    """The master's own reopen on USR1 (Arbiter.handle_usr1 -> Logger.reopen_files) must not
    end gunicorn's main loop when a new log file cannot be opened."""
    try:
        from gunicorn.glogging import Logger
    except ImportError:
        return  # no gunicorn here: no master to protect
    try:
        if not atomic_reopen.patch_gunicorn_logger(Logger):
            warn_skip("gunicorn's Logger.reopen_files", "it is not a method of gunicorn.glogging.Logger")
    except Exception as exc:
        warn_skip("gunicorn's Logger.reopen_files", "{}: {}".format(type(exc).__name__, exc))


def patch_class(cls):
    """Wrap cls.init_signals; subclasses that don't override it (UvicornH11Worker) follow."""
    if is_patched(cls):
        return True
    original = vars(cls).get("init_signals")
    if not callable(original):
        warn_skip("{}.{}".format(cls.__module__, cls.__name__), "it has no init_signals method of its own")
        return False
    function_wrapper = _wrapper_class()
    if function_wrapper is None:
        return False
    wrapper = function_wrapper(original, _patched_init_signals)
    wrapper._self_uvicorn_usr1_patch = True
    cls.init_signals = wrapper
    _patched.append(cls)
    return True


def unpatch_class(cls):
    """Restore the original init_signals; True if cls was patched."""
    if not is_patched(cls):
        return False
    cls.init_signals = vars(cls)["init_signals"].__wrapped__
    if cls in _patched:
        _patched.remove(cls)
    return True


def unpatch_all():
    for cls in list(_patched):
        unpatch_class(cls)
    glogging = sys.modules.get("gunicorn.glogging")
    if glogging is not None:
        atomic_reopen.unpatch_gunicorn_logger(glogging.Logger)


def _patched_init_signals(wrapped, instance, args, kwargs):
    """uvicorn's own init_signals first, then the loop-safe USR1 handling on top."""
    result = wrapped(*args, **kwargs)
    worker = instance if instance is not None else (args[0] if args else None)
    try:
        if threading.current_thread() is not threading.main_thread():
            warn_skip("the SIGUSR1 handler", "init_signals was called off the main thread")
        elif worker is not None:
            worker_signals.install_worker_signals(worker)
    except Exception as exc:
        warn_skip("the SIGUSR1 handler", "{}: {}".format(type(exc).__name__, exc))
    return result
