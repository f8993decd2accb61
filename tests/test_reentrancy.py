"""A signal that lands while a log record is being written must not break the log.

The probe logs through a real gunicorn access log in a tight loop on the main thread while
a thread renames the file and sends a bounded burst of real SIGUSR1s (200, 2 ms apart).
The control installs gunicorn's handle_usr1 synchronously, as uvicorn >= 0.19 does, and
must show `Logging error` tracebacks; the patched handler must show none and lose no line.
"""

import json
import os
import subprocess

import pytest

from tools.stacks import venv

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probes", "reentrancy_probe.py")
CASES = [("uvicorn-0.54.0", "asyncio"), ("uvicorn-0.13.1", "uvloop")]


def run(stack, mode, loop, workdir):
    out = subprocess.run(
        [venv(stack).python, PROBE, mode, loop, str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("stack,loop", CASES)
def test_synchronous_reopen_breaks_the_log(stack, loop, tmp_path):
    report = run(stack, "sync", loop, tmp_path)
    assert report["renamed"] > 100, report  # the storm really happened
    assert report["logging_errors"] > 0, report
    assert report["reentrant"] > 0, report


@pytest.mark.parametrize("stack,loop", CASES)
def test_deferred_reopen_is_clean_and_loses_nothing(stack, loop, tmp_path):
    report = run(stack, "deferred", loop, tmp_path)
    assert report["renamed"] > 100, report
    assert report["logging_errors"] == 0, report
    assert report["reentrant"] == 0, report
    assert report["found"] == report["written"], report
