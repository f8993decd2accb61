"""Shared by every test: the import path, and the two kinds of test (`unit` and `e2e`).

Every collected test gets exactly one of the two markers (docs/development.md):
- `unit`: runs in the pytest process, or as a short subprocess of an interpreter already on the
  machine; no real server, no venv built (at most one cached venv used). `make test-fast` runs
  these: every test under tests/unit/, and the tests not marked `e2e` in the modules of IN_PROCESS.
- `e2e`: everything else: real gunicorn/uvicorn servers, venvs of PyPI releases, fresh
  interpreters in throwaway venvs, PyPI downloads. A test marked `@pytest.mark.e2e` is one; so is
  every test of a top-level module that is not in IN_PROCESS (a new module is `e2e` until listed).
`make test` (and .ci/run) runs both, each test once.
"""

import os
import sys

import pytest

# tests import the shared harness as `tools.*` (tests/stacks.py re-exports tools/stacks.py)
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
for path in (REPO, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

UNIT_DIR = os.path.join(HERE, "unit")
# Top-level modules whose tests without an explicit `e2e` marker are in-process (or run a short
# subprocess of an interpreter already there, pyenv's or this one): those tests are `unit`.
IN_PROCESS = {
    "test_check.py",
    "test_check_logrotate.py",
    "test_matrix.py",
    "test_oldest_python.py",
    "test_reopen_units.py",
    "test_stacks.py",
}


def kind_of(path, explicit_e2e):
    """'unit' or 'e2e' for a test in the file `path`; ValueError for an e2e test in tests/unit/."""
    if os.path.dirname(os.path.abspath(path)).startswith(UNIT_DIR):
        if explicit_e2e:
            raise ValueError("{}: tests/unit/ holds no e2e test; move it to tests/".format(path))
        return "unit"
    if explicit_e2e or os.path.basename(path) not in IN_PROCESS:
        return "e2e"
    return "unit"


def pytest_addoption(parser):
    parser.addoption(
        "--min-tests",
        type=int,
        default=0,
        help="fail when fewer tests than this are selected (make test-fast: a fast loop that "
        "silently shrinks is a bug)",
    )


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        try:
            kind = kind_of(str(item.fspath), item.get_closest_marker("e2e") is not None)
        except ValueError as err:
            raise pytest.UsageError(str(err)) from None
        if kind == "unit":
            item.add_marker(pytest.mark.unit)
        elif item.get_closest_marker("e2e") is None:
            item.add_marker(pytest.mark.e2e)


def pytest_collection_finish(session):
    wanted = session.config.getoption("min_tests")
    if wanted and len(session.items) < wanted:
        raise pytest.UsageError(
            "{} tests selected, fewer than --min-tests {}: did a module leave tests/conftest.py "
            "IN_PROCESS or tests/unit/?".format(len(session.items), wanted)
        )
