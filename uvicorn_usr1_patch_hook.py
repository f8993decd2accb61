"""uvicorn-usr1-patch's start-up hook: a sys.meta_path finder that patches UvicornWorker
right after its module is executed.

uvicorn_usr1_patch.pth imports this module at every interpreter start. It is one top-level
module (not part of the package, whose import would cost a second module) and imports only
``sys``. The finder's fast path for every other module name is one frozenset lookup; wrapt,
uvicorn and the rest of the package are imported only when one of TARGETS is being imported
(in gunicorn's master, before it forks).
"""

import sys

# Modules whose execution defines a UvicornWorker class: uvicorn's own (0.4 onwards) and the
# separate uvicorn-worker package (whose __init__ imports the class from uvicorn_worker._workers).
TARGETS = frozenset(("uvicorn.workers", "uvicorn_worker"))


class UvicornWorkerFinder(object):
    """Finds nothing itself: for a target it asks the rest of sys.meta_path for the spec
    and wraps the loader's exec_module so the class is patched once the module has run."""

    # Recognised across reloads of this module, so that installing stays idempotent.
    uvicorn_usr1_patch = True

    def __init__(self):
        self._finding = set()

    def find_spec(self, fullname, path=None, target=None, _targets=TARGETS):
        # Called for every import in the process: a local lookup and out, for all but TARGETS.
        if fullname not in _targets or fullname in self._finding:
            return None
        self._finding.add(fullname)
        try:
            from importlib.util import find_spec

            spec = find_spec(fullname)
        except Exception:
            return None  # let the normal import machinery report it
        finally:
            self._finding.discard(fullname)
        if spec is None or spec.loader is None:
            return None
        if not _hook_loader(spec.loader, fullname):
            _patch_later_failed(fullname, spec.loader)
        return spec


def _hook_loader(loader, fullname):
    """Make loader.exec_module patch the module after running it; False if impossible."""
    original = getattr(loader, "exec_module", None)
    if original is None:
        return False
    own = "exec_module" in getattr(loader, "__dict__", {})

    def exec_module(module):
        try:
            original(module)
        finally:
            # The loader may be shared (a zipimporter): put it back as it was.
            try:
                if own:
                    loader.exec_module = original
                else:
                    del loader.exec_module
            except Exception:
                pass
        if module.__name__ == fullname:
            patch_loaded(module)

    try:
        loader.exec_module = exec_module
    except Exception:  # a loader type without a __dict__
        return False
    return True


def _patch_later_failed(fullname, loader):
    from uvicorn_usr1_patch import warn_skip

    warn_skip(
        "the import hook for " + fullname,
        "its loader {!r} cannot be hooked; call uvicorn_usr1_patch.install() after importing it".format(
            loader
        ),
    )


def patch_loaded(module):
    """Patch the UvicornWorker of an executed target module. Never raises."""
    try:
        from uvicorn_usr1_patch import worker_patch

        worker_patch.patch_module(module)
    except Exception as exc:
        try:
            from uvicorn_usr1_patch import warn_skip

            warn_skip(getattr(module, "__name__", "?"), "unexpected {}: {}".format(type(exc).__name__, exc))
        except Exception:
            pass


def install_hook():
    """Put the finder first in sys.meta_path (once) and patch targets already imported."""
    if not any(getattr(finder, "uvicorn_usr1_patch", False) for finder in sys.meta_path):
        sys.meta_path.insert(0, UvicornWorkerFinder())
    for name in TARGETS:
        module = sys.modules.get(name)
        if module is not None:
            patch_loaded(module)
    return True


def remove_hook():
    """Take every finder of ours out of sys.meta_path."""
    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "uvicorn_usr1_patch", False)]


def startup():
    """What the .pth calls: install the hook, and never let anything escape into start-up."""
    try:
        install_hook()
    except Exception:
        pass
