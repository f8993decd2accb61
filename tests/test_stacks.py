"""The one table of stacks (tools/stacks.py) and the one vocabulary of families
(uvicorn_usr1_patch/releases.py) agree with each other and with the matrix's cells."""

import pytest

from tools import make_patches, matrix
from tools.stacks import ALL, DIFF_STACKS, PACKAGE_WORKER, PYTHONS, STACKS, Stack, uvicorn_release
from uvicorn_usr1_patch import releases
from uvicorn_usr1_patch.releases import ASGI, PASS, RESET, SYNC, family_of, version_key


def test_version_key_orders_uvicorn_and_python_versions():
    assert version_key("0.17.0.post1") > version_key("0.17.0") > version_key("0.16.0")
    assert version_key("0.9.1") < version_key("0.10.0")
    assert version_key("3.10") > version_key("3.9")
    assert sorted(PYTHONS, key=version_key) == PYTHONS


@pytest.mark.parametrize(
    "version, family",
    [("0.3.32", None), ("0.4.0", PASS), ("0.13.2", PASS), ("0.13.3", RESET)]
    + [("0.17.0.post1", RESET), ("0.18.3", RESET), ("0.19.0", SYNC), ("0.54.0", SYNC)],
)
def test_family_boundaries(version, family):
    assert family_of(version) == family


def test_every_family_has_a_description():
    for name in list(releases.FAMILIES) + [releases.DEFERRED, releases.UNKNOWN]:
        assert releases.DESCRIPTIONS[name]


def _cells():
    return [(c["name"], c["python"], c["requirements"], c["worker"], c["family"]) for c in matrix.CELLS]


def test_every_python_is_in_the_list_ci_installs():
    used = {s.python for s in ALL.values()} | {s.python for s in DIFF_STACKS.values()}
    used |= {python for _, python, _, _, _ in _cells()}
    assert used <= set(PYTHONS)


def test_each_stack_family_is_its_uvicorn_release_family():
    stacks = list(ALL.values()) + list(DIFF_STACKS.values())
    for stack in stacks:
        if stack.family == ASGI:
            assert not any(r.startswith("uvicorn") for r in stack.requirements), stack
        elif stack.worker == PACKAGE_WORKER:
            assert stack.family == SYNC, stack
        else:
            assert family_of(uvicorn_release(stack)) == stack.family, stack
    for name, python, requirements, worker, family in _cells():
        if worker == PACKAGE_WORKER:
            assert family == SYNC, name
        else:
            release = uvicorn_release(Stack(name, python, requirements, worker, family))
            assert family == family_of(release), name


def test_each_workers_file_is_named_after_releases_of_its_family():
    for workers_file in make_patches.WORKERS_FILES.values():
        first = workers_file.name.split("-")[0]
        assert family_of(first) == workers_file.family, workers_file
        assert DIFF_STACKS[workers_file.name].family == workers_file.family


def test_one_name_one_stack():
    # the core stacks: one per behaviour of an unpatched worker, and 0.29.0 (py3.11, gunicorn 23) for faults
    assert [s.family for s in STACKS.values()] == [PASS, RESET, SYNC, SYNC, SYNC]
    assert len(ALL) == len({(s.python, tuple(sorted(s.requirements)), s.worker) for s in ALL.values()})
