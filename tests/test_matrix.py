"""The compatibility matrix as tests: one test per cell (tools/matrix/cells.py CELLS).

Each cell runs the report's logrotate scenario and the killall-style one, patched and as a
control with UVICORN_USR1_PATCH=0 (key cells also the 50-rotation storm and copytruncate). A
cell fails when a patched run does not pass, when the control of an affected release
(0.4-0.18.3) does not show that release's own failure, or when it cannot install (uv's reason,
or a missing pyenv Python): combinations that cannot exist are no cells (matrix.IMPOSSIBLE).
With MATRIX_RESULTS=DIR each cell's raw result is saved there, and
`python -m tools.matrix --from-results DIR --write COMPATIBILITY.md` turns them into the table.
"""

import json
import os

import pytest

from tools import logrotate_run, matrix
from uvicorn_usr1_patch.releases import PASS


def test_report_config_is_the_reports(tmp_path):
    rotation = logrotate_run.Logrotate(str(tmp_path), [str(tmp_path / "access.log")], "/x/gunicorn.pid")
    text = logrotate_run.config_text(rotation.conf)
    for directive in (
        "compress",
        "nodelaycompress",
        "dateext",
        "dateformat -%Y-%m-%d-%s",
        "missingok",
        "notifempty",
        "create",
        "kill -USR1 $(cat /x/gunicorn.pid)",
    ):
        assert directive in text
    assert "killall" not in text and "copytruncate" not in text


def test_judge_rejects_a_release_that_kept_writing_to_the_rotated_file():
    result = {
        "failed_requests": 0,
        "restarts": 0,
        "lost": 10,
        "duplicated": 0,
        "logging_errors": 0,
        "pids_changed": False,
        "reopened": False,
        "after_in_new_file": 0,
        "after_expected": 10,
        "before_in_rotated": 10,
        "before_expected": 10,
        "rotated_extra": [],
        "rotated_gz": True,
        "rotated_files": ["access.log-x.gz"],
        "app_after_in_new_file": 0,
        "access_file": "access.log",
    }
    ok, problems = matrix.judge_rotate(result)
    assert not ok and any("post-rotation" in p for p in problems)
    cell = {"family": PASS}
    assert matrix.control_shows_bug(cell, result)[0]


@pytest.mark.e2e
@pytest.mark.parametrize("cell", matrix.CELLS, ids=[c["name"] for c in matrix.CELLS])
def test_cell(cell, tmp_path):
    out = matrix.run_cell(cell, str(tmp_path))
    results_dir = os.environ.get("MATRIX_RESULTS")
    if results_dir:
        os.makedirs(results_dir, exist_ok=True)
        with open(os.path.join(results_dir, cell["name"] + ".json"), "w") as f:
            json.dump(out, f, indent=1)
    assert "not_installed" not in out, "cannot install: " + out.get("not_installed", "")
    assert out["verdict"]["ok"], "\n".join(out["verdict"]["problems"])
