"""The compatibility matrix: real gunicorn x uvicorn x Python stacks, real logrotate.

    python -m tools.matrix [--cells NAME ...] [--write COMPATIBILITY.md] [--json results.json]

One module per idea:
- cells.py: the cells (stacks from PyPI, their families) and their venvs;
- scenarios.py: what runs on a cell (report / killall rotations, storm, copytruncate), patched
  and as a control with UVICORN_USR1_PATCH=0, each returning a result dict; run_cell();
- logs.py: reading the logs a run left (request tags, plain or gzipped, rotated copies);
- judging.py: result dicts -> (ok, problems), which tests/test_matrix.py asserts;
- report.py: COMPATIBILITY.md; __main__.py: the command line.
"""

from tools.matrix.cells import CELLS, IMPOSSIBLE, by_name  # noqa: F401
from tools.matrix.judging import control_shows_bug, judge_rotate, judge_storm, verdict  # noqa: F401
from tools.matrix.scenarios import run_cell  # noqa: F401
