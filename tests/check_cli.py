"""`python -m uvicorn_usr1_patch check` run as an operator runs it, for tests/test_check*.py."""

import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_check(*args, timeout=60):
    """The CLI as an operator runs it, from this (tools') Python, not the target's venv."""
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, "-m", "uvicorn_usr1_patch", "check"] + [str(a) for a in args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=timeout,
    )
    out, err = (proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8"))  # UTF-8 or it fails here
    return proc.returncode, out, err


def run_json(*args):
    code, out, err = run_check("--json", *args)
    assert err == "", err
    return code, json.loads(out)


def assert_one_line_error(code, out, err, needle):
    assert code == 2, (code, out, err)
    assert out == ""
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err, err


def timed_check(*args):
    start = time.monotonic()
    result = run_check(*args, timeout=10)
    return result, time.monotonic() - start
