"""`python -m uvicorn_usr1_patch` names each release's own USR1 behaviour and says whether
workers started from the environment get the loop-safe reopen (exit 0) or not (exit 1)."""

import json
import os
import subprocess

import pytest

from tools import venvs
from tools.stacks import STACKS, venv
from uvicorn_usr1_patch.releases import DEFERRED

FAKES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fakes")


def doctor(name, *args, env=None, python_args=(), python=None):
    full_env = dict(os.environ)
    full_env.pop("PYTHONPATH", None)
    full_env.update(env or {})
    python = python or venv(name).python
    cmd = [python] + list(python_args) + ["-m", "uvicorn_usr1_patch"] + list(args)
    out = subprocess.run(
        cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60
    )
    return out.returncode, out.stdout, out.stderr


@pytest.mark.parametrize("name", sorted(STACKS))
def test_doctor_ok_when_the_hook_is_active(name):
    code, out, err = doctor(name, "--json")
    report = json.loads(out)
    assert code == 0, out + err
    assert report["ok"] and report["hook_active"]
    worker = report["workers"][-1]
    assert worker["unpatched"] == STACKS[name].family
    assert worker["in_gunicorn_workers"] == DEFERRED


@pytest.mark.parametrize("name", sorted(STACKS))
def test_doctor_not_ok_when_turned_off(name):
    code, out, _ = doctor(name, env={"UVICORN_USR1_PATCH": "0"})
    assert code == 1
    assert "NOT OK" in out
    assert "unset UVICORN_USR1_PATCH" in out


def test_doctor_says_what_to_do_when_the_pth_is_skipped():
    # python -S processes no .pth: the package is importable only through PYTHONPATH here
    site_packages = venv("uvicorn-0.13.1").site_packages()
    code, out, _ = doctor("uvicorn-0.13.1", env={"PYTHONPATH": site_packages}, python_args=["-S"])
    assert code == 1
    assert "USR1 ignored" in out
    assert "sitecustomize.py" in out


def test_bad_arguments_exit_2():
    code, _, err = doctor("uvicorn-0.13.1", "--bogus")
    assert code == 2 and "usage" in err


# -- a missing or broken piece: the right advice, and always a report ---------------------------
def without_gunicorn(name):
    """The stack's venv without gunicorn: uvicorn (and this package) only."""
    stack = STACKS[name]
    return venvs.ensure(stack.python, [r for r in stack.requirements if not r.startswith("gunicorn")])


@pytest.mark.parametrize("name", ["uvicorn-0.18.3", "uvicorn-0.54.0"])
def test_plain_uvicorn_without_gunicorn_is_ok_when_patched(name):
    """No gunicorn: plain uvicorn is what runs here; patched, the doctor says it reopens (exit 0;
    it said "no UvicornWorker found" / "pip install gunicorn", exit 1, before)."""
    python = without_gunicorn(name).python
    code, out, err = doctor(None, python=python)
    assert code == 0, out + err
    assert "gunicorn            not installed" in out
    assert "uvicorn.workers     needs gunicorn (not installed): plain uvicorn only" in out
    assert "verdict             OK: plain uvicorn reopens its logs on USR1, from the event loop" in out
    assert "next                nothing: plain uvicorn reopens its logs on USR1" in out
    assert "install gunicorn" not in out and "install uvicorn " not in out

    # the control: the same venv with the patch turned off: what uvicorn does alone, exit 1
    code, out, _ = doctor(None, "--json", python=python, env={"UVICORN_USR1_PATCH": "0"})
    report = json.loads(out)
    assert (code, report["ok"]) == (1, False)
    assert report["next"] == "unset UVICORN_USR1_PATCH (it turns the patch off)"
    parts = report["plain_uvicorn"]
    assert [p["here"] for p in parts] == [p["unpatched"] for p in parts]
    assert parts[0]["here"] == "server-dies"


@pytest.mark.parametrize(
    "fake, error",
    [
        ("broken_gunicorn", "RuntimeError: gunicorn is broken on purpose"),
        ("exiting_gunicorn", "sys.exit(3) called during the import"),
    ],
)
def test_a_failing_gunicorn_import_is_reported(fake, error):
    # the venv's gunicorn is shadowed by tests/fakes/FAKE/gunicorn, first on PYTHONPATH
    code, out, err = doctor("uvicorn-0.18.3", env={"PYTHONPATH": os.path.join(FAKES, fake)})
    assert code == 1, out + err
    assert "uvicorn.workers     import failed: " + error in out
    assert "next                fix the import of uvicorn.workers" in out and error in out
    assert "install uvicorn" not in out
    code, out, err = doctor("uvicorn-0.18.3", "--json", env={"PYTHONPATH": os.path.join(FAKES, fake)})
    report = json.loads(out)
    assert (code, report["ok"], report["workers"]) == (
        1,
        False,
        [{"class": "uvicorn.workers", "error": error}],
    )
