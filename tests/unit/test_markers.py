"""tests/conftest.py: every test is `unit` or `e2e`, and `make test` still collects each once."""

import os
import subprocess
import sys

import conftest
import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize(
    "path, explicit_e2e, kind",
    [
        ("unit/test_procfs.py", False, "unit"),
        ("test_reopen_units.py", False, "unit"),
        ("test_check.py", False, "unit"),
        ("test_check.py", True, "e2e"),
        ("test_e2e.py", False, "e2e"),
        ("test_startup.py", False, "e2e"),
        ("test_new_module_nobody_listed.py", False, "e2e"),
    ],
)
def test_kind_of(path, explicit_e2e, kind):
    assert conftest.kind_of(os.path.join(TESTS, path), explicit_e2e) == kind


def test_an_e2e_test_in_tests_unit_is_an_error():
    with pytest.raises(ValueError, match="tests/unit/ holds no e2e test"):
        conftest.kind_of(os.path.join(TESTS, "unit", "test_x.py"), True)


def collected(*args):
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        + list(args)
        + [TESTS],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        universal_newlines=True,
        cwd=os.path.dirname(TESTS),
    )
    assert out.returncode == 0, out.stdout
    return [line for line in out.stdout.splitlines() if "::" in line]


def test_unit_and_e2e_split_the_whole_suite():
    everything, unit, e2e = collected(), collected("-m", "unit"), collected("-m", "e2e")
    assert len(everything) == len(set(everything))
    assert sorted(unit + e2e) == sorted(everything)
    assert not set(unit) & set(e2e)
    assert len(unit) >= 100
    assert all(t.startswith("tests/unit/") for t in collected("-m", "unit", "-k", "test_procfs"))
