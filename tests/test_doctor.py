"""`python -m uvicorn_usr1_patch` names each release's own USR1 behaviour and says whether
workers started from the environment get the loop-safe reopen (exit 0) or not (exit 1)."""

import json
import os
import subprocess

import pytest

from tools.stacks import STACKS, venv
from uvicorn_usr1_patch.releases import DEFERRED


def doctor(name, *args, env=None, python_args=()):
    full_env = dict(os.environ)
    full_env.pop("PYTHONPATH", None)
    full_env.update(env or {})
    cmd = [venv(name).python] + list(python_args) + ["-m", "uvicorn_usr1_patch"] + list(args)
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
