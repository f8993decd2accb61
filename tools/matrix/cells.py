"""The compatibility matrix's cells: real gunicorn x uvicorn x Python stacks, and their venvs.

Each cell is a cached venv (tools/venvs.py) holding one stack from PyPI plus this checkout's
wheel. family: uvicorn_usr1_patch/releases.py's "pass" (0.4.0-0.13.2: workers ignore USR1),
"reset" (0.13.3-0.18.3: USR1 kills the workers), "sync" (0.19.0+ and uvicorn-worker: a
synchronous `handle_usr1` in the signal handler). key: the cells that run every scenario; the
others run the report and killall scenarios with their controls.

Old uvicorn releases (0.4-0.13) pin few dependencies, so today's resolver would pick ones they
never ran with: such cells pin the uvloop/httptools/h11/click/websockets of their time (uvloop
0.14/0.15 keep their `asyncio.get_event_loop()` under uvloop's policy working).
"""

import glob
import os
import subprocess

from tools import stacks, venvs
from tools.stacks import H11_WORKER as H11
from tools.stacks import PACKAGE_WORKER
from tools.stacks import UVICORN_WORKER as UVICORN
from uvicorn_usr1_patch.releases import PASS, RESET, SYNC, version_key

# dependencies as of 2019-2020, for uvicorn 0.4-0.13 (no upper bounds in their metadata)
_OLD_PY36 = ["uvloop==0.14.0", "httptools==0.1.1", "h11==0.9.0", "click==7.1.2", "websockets==8.1"]
_OLD_PY39 = ["uvloop==0.15.3", "httptools==0.1.2", "h11==0.11.0", "click==7.1.2", "websockets==8.1"]


def _cell(name, python, gunicorn, uvicorn, worker, family, workers_py, extra=(), key=False, app=None):
    requirements = ["gunicorn==" + gunicorn] + [uvicorn] + list(extra)
    return {
        "name": name,
        "python": python,
        "requirements": requirements,
        "gunicorn": gunicorn,
        "uvicorn": uvicorn,
        "worker": worker,
        "family": family,
        "workers_py": workers_py,  # the run of releases sharing this workers.py
        "key": key,
        "app": app or "matrix_app:app",
    }


def _from_stack(stack, name, workers_py, key=False, app=None):
    """A cell of a tools/stacks.py stack (its first requirement is gunicorn's, its second uvicorn's)."""
    gunicorn, uvicorn = stack.requirements[:2]
    assert gunicorn.startswith("gunicorn==") and uvicorn.startswith("uvicorn"), stack
    cell = _cell(
        name, stack.python, gunicorn[len("gunicorn==") :], uvicorn, stack.worker, stack.family, workers_py
    )
    cell.update(requirements=list(stack.requirements), key=key, app=app or cell["app"])
    return cell


CELLS = [
    # the report: CentOS 7, Python 3.8.3, gunicorn 20.0.4, uvicorn 0.13.1 (uvloop + httptools), fastapi 0.62.0
    _from_stack(
        stacks.REPORT, "report-py3.8-g20.0.4-u0.13.1", "0.12.2-0.13.2", key=True, app="fastapi_app:app"
    ),
    _cell(
        "py3.6-g19.9.0-u0.4.2",
        "3.6",
        "19.9.0",
        "uvicorn==0.4.2",
        UVICORN,
        PASS,
        "0.4.0-0.4.2",
        _OLD_PY36,
        key=True,
    ),
    _cell("py3.6-g19.9.0-u0.4.3-h11", "3.6", "19.9.0", "uvicorn==0.4.3", H11, PASS, "0.4.3", _OLD_PY36),
    _cell(
        "py3.7-g19.10.0-u0.4.5",
        "3.7",
        "19.10.0",
        "uvicorn==0.4.5",
        UVICORN,
        PASS,
        "0.4.4-0.4.5",
        _OLD_PY36,
    ),
    _cell("py3.7-g20.0.4-u0.4.6-h11", "3.7", "20.0.4", "uvicorn==0.4.6", H11, PASS, "0.4.6", _OLD_PY36),
    _cell(
        "py3.7-g20.0.4-u0.7.3",
        "3.7",
        "20.0.4",
        "uvicorn==0.7.3",
        UVICORN,
        PASS,
        "0.5.0-0.9.0 (not 0.6.1)",
        key=True,
    ),
    _cell("py3.7-g20.0.4-u0.6.1-h11", "3.7", "20.0.4", "uvicorn==0.6.1", H11, PASS, "0.6.1"),
    _cell(
        "py3.8-g20.0.4-u0.9.1",
        "3.8",
        "20.0.4",
        "uvicorn==0.9.1",
        UVICORN,
        PASS,
        "0.9.1",
        ["uvloop==0.14.0"],
    ),
    _cell(
        "py3.8-g20.1.0-u0.11.1-h11",
        "3.8",
        "20.1.0",
        "uvicorn==0.11.1",
        H11,
        PASS,
        "0.10.0-0.11.1 (not 0.10.9)",
        ["uvloop==0.14.0"],
    ),
    _cell(
        "py3.8-g20.1.0-u0.10.9",
        "3.8",
        "20.1.0",
        "uvicorn==0.10.9",
        UVICORN,
        PASS,
        "0.10.9",
        ["uvloop==0.14.0"],
    ),
    _cell(
        "py3.8-g20.0.4-u0.11.3",
        "3.8",
        "20.0.4",
        "uvicorn==0.11.3",
        UVICORN,
        PASS,
        "0.11.2-0.11.3",
        _OLD_PY36,
    ),
    _cell(
        "py3.9-g20.1.0-u0.11.4-h11",
        "3.9",
        "20.1.0",
        "uvicorn==0.11.4",
        H11,
        PASS,
        "0.11.4",
        ["uvloop==0.15.3"],
        key=True,
    ),
    _cell(
        "py3.9-g20.1.0-u0.12.1",
        "3.9",
        "20.1.0",
        "uvicorn==0.12.1",
        UVICORN,
        PASS,
        "0.11.5-0.12.1",
        _OLD_PY39,
    ),
    _cell(
        "py3.9-g21.2.0-u0.13.2-h11",
        "3.9",
        "21.2.0",
        "uvicorn==0.13.2",
        H11,
        PASS,
        "0.12.2-0.13.2",
        _OLD_PY39,
    ),
    _cell(
        "py3.9-g20.1.0-u0.13.3",
        "3.9",
        "20.1.0",
        "uvicorn[standard]==0.13.3",
        UVICORN,
        RESET,
        "0.13.3-0.13.4",
        ["uvloop==0.15.3", "httptools==0.1.2"],
        key=True,
    ),
    _cell("py3.10-g21.2.0-u0.14.0", "3.10", "21.2.0", "uvicorn==0.14.0", UVICORN, RESET, "0.14.0", key=True),
    _cell(
        "py3.10-g21.2.0-u0.16.0",
        "3.10",
        "21.2.0",
        "uvicorn[standard]==0.16.0",
        UVICORN,
        RESET,
        "0.15.0-0.16.0",
    ),
    _cell(
        "py3.10-g20.1.0-u0.18.3",
        "3.10",
        "20.1.0",
        "uvicorn[standard]==0.18.3",
        UVICORN,
        RESET,
        "0.17.0-0.18.3",
        key=True,
    ),
    _cell(
        "py3.11-g21.2.0-u0.19.0",
        "3.11",
        "21.2.0",
        "uvicorn[standard]==0.19.0",
        UVICORN,
        SYNC,
        "0.19.0",
        key=True,
    ),
    _cell(
        "py3.11-g22.0.0-u0.29.0-h11",
        "3.11",
        "22.0.0",
        "uvicorn==0.29.0",
        H11,
        SYNC,
        "0.20.0-0.29.0",
        key=True,
    ),
    _cell(
        "py3.12-g23.0.0-u0.29.0",
        "3.12",
        "23.0.0",
        "uvicorn[standard]==0.29.0",
        UVICORN,
        SYNC,
        "0.20.0-0.29.0",
        key=True,
    ),
    _cell(
        "py3.13-g27.0.1-u0.54.0",
        "3.13",
        "27.0.1",
        "uvicorn[standard]==0.54.0",
        UVICORN,
        SYNC,
        "0.30.0+ (deprecated module)",
        key=True,
    ),
    _cell(
        "py3.13-g27.0.1-uvicorn-worker0.4.0",
        "3.13",
        "27.0.1",
        "uvicorn-worker==0.4.0",
        PACKAGE_WORKER,
        SYNC,
        "uvicorn-worker package",
        ["uvicorn[standard]"],
        key=True,
    ),
    _cell(
        "py3.12-g23.0.0-uvicorn-worker0.4.0-asyncio",
        "3.12",
        "23.0.0",
        "uvicorn-worker==0.4.0",
        PACKAGE_WORKER,
        SYNC,
        "uvicorn-worker package",
    ),
]

# Combinations that cannot exist are no cells: COMPATIBILITY.md lists them as text.
IMPOSSIBLE = [
    (
        "gunicorn 27 on Python 3.9 (or older)",
        "gunicorn 27.0.1 requires Python >= 3.10 (`Requires-Python` on PyPI): no installer can put it "
        "there, so it is no cell; the 0.54.0 and uvicorn-worker cells run it on Python 3.13.",
    ),
]

# A request's tag rides in its path (/api/client/t/TAG): uvicorn 0.4-0.8 log the path without the


def by_name(names):
    wanted = set(names)
    found = [c for c in CELLS if c["name"] in wanted]
    missing = wanted - set(c["name"] for c in found)
    if missing:
        raise SystemExit("no such cell: " + ", ".join(sorted(missing)))
    return found


def venv_for(cell):
    """(venv, None), or (None, reason) when the cell cannot be installed on this machine: a failure
    of the cell (every cell is a combination that exists; a missing Python or release is an error)."""
    try:
        return venvs.ensure(cell["python"], cell["requirements"], with_patch=True), None
    except LookupError as exc:
        return None, str(exc)
    except subprocess.CalledProcessError as exc:
        lines = [line for line in (exc.output or "").splitlines() if line.strip()]
        return None, "uv could not install it: " + " ".join(line.strip() for line in lines[-6:])


def installed_versions(venv):
    """{distribution: version} from the venv's dist-info directories (works on every Python)."""
    found = {}
    for path in glob.glob(os.path.join(venv.path, "lib", "python*", "site-packages", "*.dist-info")):
        name, _, version = os.path.basename(path)[: -len(".dist-info")].partition("-")
        found[name.lower().replace("_", "-")] = version
    return found


def loop_and_http(cell, versions):
    """What the worker class runs on, from uvicorn's CONFIG_KWARGS of that release."""
    uvicorn = version_key(versions.get("uvicorn", "0"))
    if cell["worker"] == H11:
        loop, http = "asyncio", "h11"
    elif uvicorn < (0, 14):  # CONFIG_KWARGS = {"loop": "uvloop", "http": "httptools"}
        loop, http = "uvloop", "httptools"
    else:  # "auto": uvloop and httptools when installed
        loop = "uvloop" if "uvloop" in versions else "asyncio"
        http = "httptools" if "httptools" in versions else "h11"
    return " / ".join(name + (" " + versions[name] if name in versions else "") for name in (loop, http))
