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


PLUGIN = """
def pytest_collection_finish(session):
    for item in session.items:
        kinds = sorted(m.name for m in item.iter_markers() if m.name in ("unit", "e2e"))
        print("KIND", item.nodeid, ",".join(kinds) or "none")
"""


def test_every_test_is_unit_or_e2e_exactly_once(tmp_path):
    """One collection of the whole suite, as `make test` does it, with each test's kinds printed."""
    (tmp_path / "kinds_plugin.py").write_text(PLUGIN)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "kinds_plugin",
        ]
        + [TESTS],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        universal_newlines=True,
        cwd=os.path.dirname(TESTS),
        env=env,
    )
    assert out.returncode == 0, out.stdout
    # "KIND <node id, which may hold spaces> <kinds>"
    kinds = dict(
        line[len("KIND ") :].rsplit(" ", 1) for line in out.stdout.splitlines() if line.startswith("KIND ")
    )
    assert len(kinds) == len([line for line in out.stdout.splitlines() if line.startswith("KIND ")])
    assert set(kinds.values()) == {"unit", "e2e"}  # never both, never none
    unit = [t for t, k in kinds.items() if k == "unit"]
    assert len(unit) >= 100
    assert all(kinds[t] == "unit" for t in kinds if t.startswith("tests/unit/"))
    assert (
        kinds["tests/test_e2e.py::test_control_uvicorn_0_13_1_keeps_writing_into_the_rotated_file"] == "e2e"
    )
