"""The stacks (a pyenv Python, releases from PyPI, a worker class) that tests, bench and tools run on.

One name, one stack: `uvicorn-0.54.0` is the same Python and gunicorn everywhere. Families are
those of uvicorn_usr1_patch/releases.py. Each stack's venv is made (and cached) by tools/venvs.py.
The compatibility matrix's cells are stacks too (tools/matrix/cells.py), named by what they hold.
"""

import collections

from tools import venvs
from uvicorn_usr1_patch.releases import ASGI, PASS, RESET, SYNC

UVICORN_WORKER = "uvicorn.workers.UvicornWorker"
H11_WORKER = "uvicorn.workers.UvicornH11Worker"
PACKAGE_WORKER = "uvicorn_worker.UvicornWorker"

Stack = collections.namedtuple("Stack", "name python requirements worker family")

# Every Python a test, a bench or a matrix cell runs on. A missing one fails the tests that need
# it (tools/venvs.py require_python); `python -m tools.venvs --install-pythons` installs them.
PYTHONS = ["3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]


def _table(*stacks):
    return collections.OrderedDict((s.name, s) for s in stacks)


# One per behaviour of an unpatched worker: what the core tests and the bench run on.
STACKS = _table(
    # the report's releases (Python 3.8.3, gunicorn 20.0.4, uvicorn 0.13.1 on uvloop + httptools)
    Stack(
        "uvicorn-0.13.1",
        "3.8",
        ["gunicorn==20.0.4", "uvicorn[standard]==0.13.1", "uvloop==0.14.0"],
        UVICORN_WORKER,
        PASS,
    ),
    Stack("uvicorn-0.18.3", "3.10", ["gunicorn==20.1.0", "uvicorn[standard]==0.18.3"], UVICORN_WORKER, RESET),
    Stack("uvicorn-0.29.0", "3.11", ["gunicorn==23.0.0", "uvicorn[standard]==0.29.0"], UVICORN_WORKER, SYNC),
    Stack("uvicorn-0.54.0", "3.12", ["gunicorn==23.0.0", "uvicorn[standard]==0.54.0"], UVICORN_WORKER, SYNC),
    Stack(
        "uvicorn-worker-0.4.0",
        "3.12",
        ["gunicorn==27.0.1", "uvicorn-worker==0.4.0", "uvloop", "httptools"],
        PACKAGE_WORKER,
        SYNC,
    ),
)

# The bench's anchor: gunicorn's own ASGI worker, beside the 0.54.0 stack's Python.
GUNICORN_ASGI = Stack("gunicorn-asgi", "3.12", ["gunicorn==27.0.1", "uvloop"], "asgi", ASGI)

# `make demo` and the matrix's first cell: the report's stack with its FastAPI.
REPORT = Stack(
    "report",
    "3.8",
    [
        "gunicorn==20.0.4",
        "uvicorn[standard]==0.13.1",
        "uvloop==0.14.0",
        "httptools==0.1.1",
        "fastapi==0.62.0",
    ],
    UVICORN_WORKER,
    PASS,
)

# For tests/test_patches.py: one stack per affected workers.py (tools/make_patches.py WORKERS_FILES),
# keyed by that file's name, installed WITHOUT this package. Old releases need the Python and the
# uvloop/httptools/websockets of their time (uvloop >= 0.15 breaks their get_event_loop()).
# 0.4.1 stands for 0.4.0-0.4.2: 0.4.0's sdist lacks uvicorn/lifespan/, so its workers cannot boot.
_OLD_37 = ["gunicorn==20.0.4", "click==7.1.2", "h11==0.8.1", "httptools==0.0.13"]
_OLD_37_WS7 = _OLD_37 + ["websockets==7.0", "uvloop==0.12.2"]
_OLD_37_UVLOOP_14 = _OLD_37[:2] + ["h11==0.9.0", "httptools==0.0.13", "websockets==8.1", "uvloop==0.14.0"]
_OLD_38 = ["gunicorn==20.0.4", "click==7.1.2", "h11==0.9.0", "websockets==8.1", "httptools==0.1.1"]
_OLD_38 += ["uvloop==0.14.0"]
_G20 = ["gunicorn==20.0.4"]
_G20_1 = ["gunicorn==20.1.0"]
DIFF_STACKS = _table(
    Stack("0.4.0-0.4.2", "3.7", _OLD_37_WS7 + ["uvicorn==0.4.1"], UVICORN_WORKER, PASS),
    Stack("0.4.3", "3.7", _OLD_37_WS7 + ["uvicorn==0.4.3"], UVICORN_WORKER, PASS),
    Stack("0.4.4-0.4.5", "3.7", _OLD_37_WS7 + ["uvicorn==0.4.4"], UVICORN_WORKER, PASS),
    Stack("0.4.6", "3.7", _OLD_37_WS7 + ["uvicorn==0.4.6"], UVICORN_WORKER, PASS),
    Stack("0.5.0-0.9.0", "3.7", _OLD_37_WS7 + ["uvicorn==0.7.0"], UVICORN_WORKER, PASS),
    Stack("0.6.1", "3.7", _OLD_37_WS7 + ["uvicorn==0.6.1"], UVICORN_WORKER, PASS),
    Stack(
        "0.9.1",
        "3.7",
        _OLD_37 + ["websockets==8.1", "uvloop==0.12.2", "uvicorn==0.9.1"],
        UVICORN_WORKER,
        PASS,
    ),
    Stack(
        "0.10.0-0.11.1",
        "3.7",
        _OLD_37 + ["websockets==8.1", "uvloop==0.14.0rc2", "uvicorn==0.10.0"],
        UVICORN_WORKER,
        PASS,
    ),
    Stack("0.10.9", "3.7", _OLD_37_UVLOOP_14 + ["uvicorn==0.10.9"], UVICORN_WORKER, PASS),
    Stack("0.11.2-0.11.3", "3.7", _OLD_37_UVLOOP_14 + ["uvicorn==0.11.2"], UVICORN_WORKER, PASS),
    Stack("0.11.4", "3.8", _OLD_38 + ["uvicorn==0.11.4"], UVICORN_WORKER, PASS),
    Stack("0.11.5-0.12.1", "3.8", _OLD_38 + ["uvicorn==0.11.5"], UVICORN_WORKER, PASS),
    Stack("0.12.2-0.13.2", "3.8", STACKS["uvicorn-0.13.1"].requirements, UVICORN_WORKER, PASS),
    Stack(
        "0.13.3-0.13.4", "3.8", _G20 + ["uvicorn[standard]==0.13.3", "uvloop==0.14.0"], UVICORN_WORKER, RESET
    ),
    Stack("0.14.0", "3.8", _G20_1 + ["uvicorn[standard]==0.14.0", "uvloop==0.14.0"], UVICORN_WORKER, RESET),
    Stack(
        "0.15.0-0.16.0",
        "3.9",
        _G20_1 + ["uvicorn[standard]==0.15.0", "uvloop==0.16.0"],
        UVICORN_WORKER,
        RESET,
    ),
    Stack(
        "0.17.0.post1-0.18.3",
        "3.10",
        _G20_1 + ["uvicorn[standard]==0.18.3", "uvloop==0.17.0"],
        UVICORN_WORKER,
        RESET,
    ),
)


def uvicorn_release(stack):
    """'0.13.1' from the stack's `uvicorn==0.13.1` / `uvicorn[standard]==0.13.1` requirement."""
    for requirement in stack.requirements:
        name, _, version = requirement.partition("==")
        if name.split("[")[0] == "uvicorn":
            return version
    return None


# Every named stack above, for look-ups by name (the bench's --setups, venv()).
ALL = _table(*(list(STACKS.values()) + [GUNICORN_ASGI, REPORT]))


def venv(name, with_patch=True):
    """The cached venv of the stack `name` (any of ALL)."""
    stack = ALL[name]
    return venvs.ensure(stack.python, stack.requirements, with_patch=with_patch)


def shared_venv(name):
    """The stack's venv where a worker running as `nobody` can import from (gunicorn as root
    with --user nobody; tools/venvs.py ensure_shared)."""
    stack = ALL[name]
    return venvs.ensure_shared(stack.python, stack.requirements)
