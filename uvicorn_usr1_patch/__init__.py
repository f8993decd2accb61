"""Make gunicorn's UvicornWorker reopen its log files on SIGUSR1, from the event loop.

The start-up hook itself is the top-level module ``uvicorn_usr1_patch_hook`` (imported by
``uvicorn_usr1_patch.pth``); this package is imported only when uvicorn's worker module is,
or when install() or the command line is used.
"""

import os
import sys

__version__ = "0.1.0"

#: Set to 0, off or false to turn the package off (the .pth, the hook and install()).
ENV_VAR = "UVICORN_USR1_PATCH"


class UvicornUSR1PatchWarning(RuntimeWarning):
    """Emitted once when the patch is skipped; uvicorn is then left exactly as it was."""


_warned = set()


def warn_skip(what, why):
    """Warn once per message that ``what`` was skipped because of ``why``; never raise."""
    message = "uvicorn-usr1-patch: skipped {}: {}; uvicorn is left unpatched".format(what, why)
    if message in _warned:
        return
    _warned.add(message)
    try:
        import warnings

        warnings.warn(message, UvicornUSR1PatchWarning, stacklevel=2)
    except Exception:  # a warning filter set to "error", a broken stderr: stay quiet
        pass


def enabled(environ=None):
    """False when the environment variable UVICORN_USR1_PATCH is 0, off or false."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "")
    return value.strip().lower() not in ("0", "off", "false")


def install():
    """Patch UvicornWorker now if it is imported, and on import otherwise.

    Idempotent; for gunicorn.conf.py or sitecustomize.py where the .pth is not processed.
    Returns True when the import hook is in place (False when turned off by UVICORN_USR1_PATCH).
    """
    if not enabled():
        return False
    import uvicorn_usr1_patch_hook

    return uvicorn_usr1_patch_hook.install_hook()


def uninstall():
    """Remove the import hook and restore every patched class (for tests)."""
    import uvicorn_usr1_patch_hook

    uvicorn_usr1_patch_hook.remove_hook()
    patching = sys.modules.get("uvicorn_usr1_patch.patching")
    if patching is not None:
        patching.unpatch_all()
