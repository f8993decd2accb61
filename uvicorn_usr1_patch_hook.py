"""uvicorn-usr1-patch's start-up hook: a sys.meta_path finder that patches UvicornWorker, and
plain uvicorn's Server and supervisors, right after their modules are executed.

uvicorn_usr1_patch.pth imports this module at every interpreter start. It is one top-level
module (not part of the package, whose import would cost a second module) and imports only
``sys``. The finder's fast path for every other module name is one frozenset lookup; uvicorn
and the rest of the package are imported only when one of TARGETS is being imported
(in gunicorn's master before it forks; in plain uvicorn when it loads its server).

Nothing here may raise into the import it hooks: every surprise ends in "not patched" and one
warning, and the import goes on as if the package were absent.
"""

import sys

# Target module -> the module of the package that patches it (its patch_module(module)).
PATCHERS = {
    # UvicornWorker: uvicorn's own (0.4 onwards) and the separate uvicorn-worker package (whose
    # __init__ imports the class from uvicorn_worker._workers).
    "uvicorn.workers": "worker_patch",
    "uvicorn_worker": "worker_patch",
    # Plain uvicorn (no gunicorn): the server, and the --workers and --reload supervisors
    # (statreload, watchfilesreload and watchgodreload inherit BaseReload's startup).
    "uvicorn.server": "server_patch",
    "uvicorn.supervisors.multiprocess": "supervisor_patch",
    "uvicorn.supervisors.basereload": "supervisor_patch",
}
TARGETS = frozenset(PATCHERS)


class UvicornWorkerFinder(object):
    """Finds nothing itself: for a target it asks the rest of sys.meta_path for the spec and
    gives it a loader of its own that runs the real one, then patches the module."""

    # Recognised across reloads of this module, so that installing stays idempotent.
    uvicorn_usr1_patch = True

    def __init__(self):
        self._finding = set()

    def find_spec(self, fullname, path=None, target=None, _targets=TARGETS):
        # Called for every import in the process: a local lookup and out, for all but TARGETS.
        if fullname not in _targets or fullname in self._finding:
            return None
        try:
            return self._hooked_spec(fullname)
        except Exception as exc:  # the normal import machinery goes on, unpatched
            _warn(fullname, "finding it failed ({}: {})".format(type(exc).__name__, exc))
            return None

    def _hooked_spec(self, fullname):
        self._finding.add(fullname)
        try:
            from importlib.util import find_spec

            spec = find_spec(fullname)
        finally:
            self._finding.discard(fullname)
        if spec is None or spec.loader is None:
            return None
        loader = PatchingLoader.wrap(spec.loader, fullname)
        if loader is None:
            _warn(
                fullname,
                "its loader {!r} cannot run the module; call uvicorn_usr1_patch.install() "
                "after importing it".format(spec.loader),
            )
            return spec
        # A spec of our own: the real loader may be shared (a zipimporter serves every module
        # of its archive), so it is never changed.
        spec.loader = loader
        return spec


class PatchingLoader(object):
    """Runs the real loader's module, then patches it. Used for one import only: once the
    module has run, its __loader__ and __spec__.loader are the real loader again."""

    def __init__(self, loader, fullname):
        self.loader = loader
        self.fullname = fullname

    @classmethod
    def wrap(cls, loader, fullname):
        if callable(getattr(loader, "exec_module", None)) or callable(getattr(loader, "get_code", None)):
            return cls(loader, fullname)
        return None

    def create_module(self, spec):
        create = getattr(self.loader, "create_module", None)
        return create(spec) if callable(create) else None

    def exec_module(self, module):
        try:
            run = getattr(self.loader, "exec_module", None)
            if callable(run):
                run(module)
            else:  # a zipimporter before Python 3.10 has get_code but no exec_module
                exec(self.loader.get_code(module.__name__), module.__dict__)
        finally:
            if getattr(module, "__loader__", None) is self:
                module.__loader__ = self.loader
            spec = getattr(module, "__spec__", None)
            if getattr(spec, "loader", None) is self:
                spec.loader = self.loader
        if module.__name__ == self.fullname:
            patch_loaded(module)

    def __getattr__(self, name):  # get_source, is_package, get_resource_reader...
        loader = self.__dict__.get("loader")
        if loader is None:
            raise AttributeError(name)
        return getattr(loader, name)


def _warn(what, why):
    try:
        from uvicorn_usr1_patch import warn_skip

        warn_skip(what, why)
    except Exception as exc:  # the package itself is broken: one line, then go on without it
        try:
            sys.stderr.write("uvicorn-usr1-patch: skipped {}: {}; and {!r}\n".format(what, why, exc))
        except Exception:
            pass


def patch_loaded(module):
    """Patch what an executed target module defines. Never raises."""
    try:
        from importlib import import_module

        patcher = import_module("uvicorn_usr1_patch." + PATCHERS[module.__name__])
        patcher.patch_module(module)
    except Exception as exc:
        _warn(getattr(module, "__name__", "?"), "unexpected {}: {}".format(type(exc).__name__, exc))


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
    except Exception as exc:
        _warn("the import hook", "{}: {}".format(type(exc).__name__, exc))
