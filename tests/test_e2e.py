"""Real gunicorn, 2 uvicorn workers on 127.0.0.1: rename access.log, USR1 to the master by PID.

Patched, the new access.log must receive exactly the requests made after the rotation and the
worker PIDs must not change. Each affected release also runs as a control with
UVICORN_USR1_PATCH=0, which must show that release's own failure.
"""

import os

import pytest

from tools.gunicorn_run import Gunicorn, count_lines
from tools.stacks import STACKS, venv

pytestmark = pytest.mark.e2e
REOPEN_DEADLINE = 10  # seconds for every worker to hold the new file


def assert_reopened(server, before, after):
    access, rotated = server.access_log, server.access_log + ".1"
    assert count_lines(access, "tag=after") == 10
    assert count_lines(access, "tag=before") == 0
    assert count_lines(rotated, "tag=before") == 10
    assert count_lines(rotated, "tag=after") == 0
    assert count_lines(server.app_log, "tag=after") == 10  # the app's own FileHandler too
    assert after == before, "workers were restarted"
    assert "Logging error" not in server.output()
    assert "Booting worker" not in _after_start(server.error_log)


def _after_start(error_log):
    """Error-log lines after the first two boots (a restart would add a third)."""
    with open(error_log) as f:
        lines = [line for line in f if "Booting worker" in line]
    return "".join(lines[2:])


@pytest.mark.parametrize("name", sorted(STACKS))
def test_patched_rotation_moves_new_lines_to_new_file(name, tmp_path):
    with Gunicorn(venv(name), str(tmp_path), worker_class=STACKS[name].worker) as server:
        before, after = server.rotation_round(REOPEN_DEADLINE)
        assert_reopened(server, before, after)


def test_control_uvicorn_0_13_1_keeps_writing_into_the_rotated_file(tmp_path):
    """The reported bug: USR1 reaches the workers, but they never reopen."""
    env = {"UVICORN_USR1_PATCH": "0"}
    with Gunicorn(venv("uvicorn-0.13.1"), str(tmp_path), env=env) as server:
        before, after = server.rotation_round(REOPEN_DEADLINE)
        assert count_lines(server.access_log, "tag=after") == 0
        assert count_lines(server.access_log + ".1", "tag=after") == 10
        assert after == before


def test_control_uvicorn_0_18_3_kills_the_workers(tmp_path):
    """USR1 has its default action in the worker: gunicorn has to boot new ones."""
    env = {"UVICORN_USR1_PATCH": "0"}
    with Gunicorn(venv("uvicorn-0.18.3"), str(tmp_path), env=env) as server:
        before, after = server.rotation_round(REOPEN_DEADLINE)
        assert not set(before) & set(after), "the workers survived USR1"


# Every way gunicorn meets the class, on a release where unpatched USR1 kills workers.
WAYS = {
    "command line -k": dict(worker_class="uvicorn.workers.UvicornWorker"),
    "python -m gunicorn": dict(worker_class="uvicorn.workers.UvicornWorker", python_m=True),
    "conf worker_class string": dict(worker_class=None, extra_args=["-c", "conf_worker_class.py"]),
    "conf imports uvicorn.workers": dict(worker_class=None, extra_args=["-c", "conf_imports_worker.py"]),
    "user subclass": dict(worker_class="custom_worker.AppWorker"),
    "UvicornH11Worker": dict(worker_class="uvicorn.workers.UvicornH11Worker"),
}


@pytest.mark.parametrize("way", sorted(WAYS))
def test_every_way_gunicorn_loads_the_worker(way, tmp_path):
    options = dict(WAYS[way])
    if options.get("extra_args"):
        # gunicorn resolves -c relative to the working directory, which is tmp_path
        options["extra_args"] = [
            "-c",
            os.path.join(os.path.dirname(__file__), "apps", options["extra_args"][1]),
        ]
    with Gunicorn(venv("uvicorn-0.18.3"), str(tmp_path), **options) as server:
        before, after = server.rotation_round(REOPEN_DEADLINE)
        assert_reopened(server, before, after)
