"""uvicorn >= 0.19 and uvicorn-worker, unpatched: a rename + USR1 storm under load breaks the log.

Their own handler reopens inside the signal handler (encode/uvicorn#1565). One rotation between
two requests works, so test_e2e's controls on these releases pass by design; the bug needs the
signal to land while a worker is inside BufferedWriter.flush (`RuntimeError: reentrant call`,
printed as `--- Logging error ---` to stderr). This is the end-to-end control for them: the
storm of bench/storm.py (real gunicorn, 2 workers, 8 connections at full speed), 800 renames +
USR1 to the master 5 ms apart. Measured on a shared 2-core machine at commit cddee93, three
runs of `python bench/storm.py --setups sync-0.54.0,sync-uvicorn-worker,ours-0.54.0,ours-uvicorn-worker
--interval 0.005 --duration 4 --modes master`: 12-47 `Logging error` blocks per unpatched run, 0
patched; every answered request had its line, and no worker restarted.
"""

import pytest

from bench import common, storm

INTERVAL, DURATION = 0.005, 4.0
FAMILIES = [("sync-0.54.0", "ours-0.54.0"), ("sync-uvicorn-worker", "ours-uvicorn-worker")]


def storm_row(name, tmp_path):
    (setup,) = common.setups_by_name([name])
    row = storm.run_one(setup, "master", DURATION, INTERVAL, 8, str(tmp_path))
    assert row["rot"] == int(round(DURATION / INTERVAL)), row
    assert row["ok"] > 1000 and row["failed"] == 0, row  # the storm ran under load
    assert row["lost acc/app"] == "0/0" and row["restarts"] == 0, row
    return row


@pytest.mark.parametrize("unpatched,patched", FAMILIES)
def test_synchronous_handler_prints_tracebacks_and_the_patch_none(unpatched, patched, tmp_path):
    control = storm_row(unpatched, tmp_path / "control")
    assert control["Logging error"] > 0 and control["tracebacks"] > 0, control
    fixed = storm_row(patched, tmp_path / "patched")
    assert fixed["Logging error"] == 0 and fixed["tracebacks"] == 0, fixed
