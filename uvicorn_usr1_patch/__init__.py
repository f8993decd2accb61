"""Make gunicorn's UvicornWorker reopen its log files on SIGUSR1, from the event loop.

The start-up hook itself is the top-level module ``uvicorn_usr1_patch_hook`` (imported by
``uvicorn_usr1_patch.pth``); this package is imported only when uvicorn's worker module is,
or when install() or the command line is used.
"""

import os
import sys

__version__ = "0.1.0"

#: Set to 0, off, false, no or disable to turn the package off (the .pth, the hook and install()).
ENV_VAR = "UVICORN_USR1_PATCH"


class UvicornUSR1PatchWarning(RuntimeWarning):
    """Emitted once when the patch is skipped; uvicorn is then left exactly as it was."""


_warned = set()


def warn_skip(what, why):
    """Warn once per message that ``what`` was skipped because of ``why``; never raise."""
    warn_once("uvicorn-usr1-patch: skipped {}: {}; uvicorn is left unpatched".format(what, why), 3)


def warn_once(message, stacklevel=2):
    """One UvicornUSR1PatchWarning per distinct message in this process; never raises."""
    if message in _warned:
        return
    _warned.add(message)
    try:
        import warnings

        warnings.warn(message, UvicornUSR1PatchWarning, stacklevel=stacklevel)
    except Exception:  # a warning filter set to "error", a broken stderr: stay quiet
        pass


# The values of UVICORN_USR1_PATCH, compared stripped and lower-cased. OFF must stay identical to the
# tuple in uvicorn_usr1_patch.pth (tests/test_check_cli.py compares them): the .pth decides at start-up.
OFF = ("0", "off", "false", "no", "disable", "disabled")
ON = ("", "1", "on", "true", "yes", "enable", "enabled")


def enabled(environ=None, warn=True):
    """False when the environment variable UVICORN_USR1_PATCH is 0, off, false, no or disable(d).

    Any other value leaves the patch on, as the .pth does; a value that is neither on nor off is
    refused with one warning (`warn`; check, reading another process's environment, passes False)."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "")
    word = value.strip().lower()
    if word in OFF:
        return False
    if word not in ON and warn:
        warn_unknown_value(value)
    return True


def warn_unknown_value(value):
    message = "uvicorn-usr1-patch: {}={!r} is not a known value (off: {}; on: {}): the patch stays on"
    warn_once(message.format(ENV_VAR, value, ", ".join(OFF), ", ".join(v for v in ON if v)), 4)


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
