"""uvicorn_usr1_patch_hook's fast path: the finder answers None for every module but its targets,
and PatchingLoader passes what it does not define through to the real loader."""

import importlib.machinery
import sys
import warnings

import pytest

import uvicorn_usr1_patch_hook as hook


@pytest.mark.parametrize(
    "name", ["json", "os.path", "uvicorn", "uvicorn.main", "gunicorn.workers", "x" * 300]
)
def test_find_spec_is_none_for_non_targets(name):
    assert name not in hook.TARGETS
    assert hook.UvicornWorkerFinder().find_spec(name) is None


def test_find_spec_is_none_while_finding_the_same_target():
    finder = hook.UvicornWorkerFinder()
    finder._finding.add("uvicorn.workers")
    assert finder.find_spec("uvicorn.workers") is None


def test_find_spec_of_a_target_that_is_not_installed_is_none(monkeypatch):
    # uvicorn is not in the tools venv: the import must fail as usual, never in the hook
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "site-packages" not in p])
    with warnings.catch_warnings():  # the finder may say why it found nothing: never raise
        warnings.simplefilter("ignore")
        assert hook.UvicornWorkerFinder().find_spec("uvicorn.workers") is None


def test_the_targets_are_uvicorns_worker_server_and_supervisors():
    assert "uvicorn.workers" in hook.TARGETS and "uvicorn_worker" in hook.TARGETS
    assert hook.TARGETS == frozenset(hook.PATCHERS)


class RealLoader(object):
    def exec_module(self, module):
        module.ran = True

    def get_source(self, name):
        return "source of " + name

    def is_package(self, name):
        return False


def test_patching_loader_passes_other_attributes_through():
    loader = hook.PatchingLoader(RealLoader(), "uvicorn.workers")
    assert loader.get_source("uvicorn.workers") == "source of uvicorn.workers"
    assert loader.is_package("uvicorn.workers") is False
    assert not hasattr(loader, "get_resource_reader")  # the real loader has none: AttributeError


def test_patching_loader_wraps_only_loaders_that_can_run_a_module():
    assert hook.PatchingLoader.wrap(object(), "uvicorn.workers") is None
    assert isinstance(hook.PatchingLoader.wrap(RealLoader(), "uvicorn.workers"), hook.PatchingLoader)


def test_patching_loader_runs_the_real_loader_for_a_module_it_does_not_patch():
    loader = hook.PatchingLoader(RealLoader(), "uvicorn.workers")
    module = type(sys)("not_the_target")
    assert loader.create_module(importlib.machinery.ModuleSpec("not_the_target", None)) is None
    loader.exec_module(module)
    assert module.ran is True


RESTORED = """
import json, sys
import uvicorn_usr1_patch_hook
uvicorn_usr1_patch_hook.install_hook()
import uvicorn.workers
from uvicorn_usr1_patch import worker_patch
module = uvicorn.workers
print(json.dumps({
    "patched": worker_patch.is_patched(module.UvicornWorker),
    "loader": type(module.__loader__).__name__,
    "spec_loader": type(module.__spec__.loader).__name__,
}))
"""


def test_the_real_loader_is_back_once_the_module_ran():
    """The hook's PatchingLoader serves one import: afterwards the module's __loader__ and
    __spec__.loader are the real loader again (importlib.reload, linecache, pkgutil see it)."""
    import json
    import os
    import subprocess

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([os.path.join(here, "fakes", "startup"), os.path.dirname(here)]),
    )
    env.pop("UVICORN_USR1_PATCH", None)
    out = subprocess.check_output([sys.executable, "-c", RESTORED], env=env, universal_newlines=True)
    seen = json.loads(out.splitlines()[-1])
    assert seen == {"patched": True, "loader": "SourceFileLoader", "spec_loader": "SourceFileLoader"}
