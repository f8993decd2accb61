"""Issue 9's storms: rename + SIGUSR1 every 100 ms under load, with bench/storm.py's own run.

The full storm of the issue is 200 rotations in 20 s per run (`python bench/storm.py`, about
8 minutes for every setup). Here each run lasts STORM_SECONDS (5 s, 50 rotations, set
UVICORN_USR1_PATCH_STORM_SECONDS=20 for the full one) so that CI stays within minutes.

- bench/storm.run_one, patched (0.13.1 with uvloop, 0.54.0): 0 lost, 0 failed, 0 restarts,
  0 tracebacks; its controls (0.13.1 never reopens, 0.18.3 loses its workers) unpatched.
- The wrong-owner storm: gunicorn as root with --user nobody, every rotation creates new
  files root:root 0600; the workers hand over again and again. Clients open a connection per
  request (as nginx does by default towards its upstreams), or keep 8 connections alive
  (bench/loadclient.py): 0 failed, 0 lost.
- The 0.19+ controls: uvicorn >= 0.19 and uvicorn-worker reopen inside the signal handler
  (encode/uvicorn#1565). One rotation between two requests works, so their end-to-end controls
  pass by design; the bug needs the signal to land while a worker is inside
  BufferedWriter.flush (`RuntimeError: reentrant call`, printed as `--- Logging error ---` to
  stderr). A denser storm shows it: 800 renames + USR1 to the master 5 ms apart. Measured at
  commit cddee93, three runs of `python bench/storm.py --setups
  sync-0.54.0,sync-uvicorn-worker,ours-0.54.0,ours-uvicorn-worker --interval 0.005 --duration 4
  --modes master`: 12-47 `Logging error` blocks per unpatched run, 0 patched.
"""

import glob
import json
import os
import shutil
import tempfile
import time

import faults
import pytest
from stacks import shared_venv

from bench import common, storm
from tools.gunicorn_run import wait_for

pytestmark = pytest.mark.e2e
STORM_SECONDS = float(os.environ.get("UVICORN_USR1_PATCH_STORM_SECONDS", "5"))
INTERVAL = 0.1


def bench_storm(setup_name, mode):
    setup = common.setups_by_name([setup_name])[0]
    workdir = tempfile.mkdtemp(prefix="storm-test-")
    try:
        row = storm.run_one(setup, mode, STORM_SECONDS, INTERVAL, 8, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("\nissue-9 storm: " + json.dumps(row))
    return row


@pytest.mark.parametrize("mode", ["master", "everyone"])
@pytest.mark.parametrize("setup", ["ours-0.13.1", "ours-0.54.0"])
def test_patched_storm_loses_nothing(setup, mode):
    row = bench_storm(setup, mode)
    assert row["ok"] > 0 and row["failed"] == 0, row
    assert row["lost acc/app"] == "0/0" and row["dup acc/app"] == "0/0", row
    assert (row["restarts"], row["Logging error"], row["tracebacks"]) == (0, 0, 0), row
    written, files = map(int, row["files written"].split("/"))
    assert written > files // 2, row  # the workers follow the renames


def test_control_storm_0_13_1_never_reopens():
    row = bench_storm("unpatched-0.13.1", "everyone")
    assert row["files written"].startswith("1/"), row


def test_control_storm_0_18_3_loses_its_workers():
    row = bench_storm("unpatched-0.18.3", "everyone")
    assert row["restarts"] > 0 and row["failed"] > 0, row


# -- the storm with the wrong-owner fault -----------------------------------------------------


def wrong_owner_storm(name, env, keep_alive=False):
    layout = faults.Layout()
    g = faults.server(shared_venv(name), layout, env=env)
    rotations = int(round(STORM_SECONDS / INTERVAL))
    try:
        with g:
            if keep_alive:  # the bench's full load: 8 keep-alive connections
                load = faults.KeepAliveLoad(g.port, STORM_SECONDS + 3, layout.run)
            else:  # a connection per request, as nginx towards its upstreams by default
                # bounded in count and time, but not before the storm is over: an unpatched
                # server answers up to ~250 requests a second per client here
                load = faults.Clients(
                    g.port, n=4, seconds=STORM_SECONDS + 40, limit=int(1000 * (STORM_SECONDS + 10))
                )
            with load as clients:
                wait_for(lambda: faults.ids_in(g.access_log), 10, what="the first access lines")
                start = time.monotonic()
                for i in range(rotations):
                    time.sleep(max(0.0, start + i * INTERVAL - time.monotonic()))
                    paths = [p for p in (g.access_log, g.error_log) if os.path.exists(p)]
                    for path in paths:
                        os.rename(path, "{}.{:04d}".format(path, i))
                    faults.create_wrong_owner(paths)
                    g.usr1_master()
                if not keep_alive:
                    faults.wait_for_requests(clients, 50)  # still serving after the storm
            master_alive = g.proc.poll() is None
        counts = {}
        for path in glob.glob(g.access_log + "*"):
            for rid, n in faults.ids_in(path).items():
                counts[rid] = counts.get(rid, 0) + n
        answered = clients.answered()
        errors = ""
        for path in glob.glob(g.error_log + "*"):
            with open(path, errors="replace") as f:
                errors += f.read()
        row = {
            "stack": name,
            "run": "control" if env else "patched",
            "clients": "8 keep-alive" if keep_alive else "4, a connection per request",
            "rotations": rotations,
            "sent": clients.sent(),
            "answered": len(answered),
            "failed": len(clients.failed()),
            "failures": sorted(set(clients.failed().values())),
            "lost": sum(1 for rid in answered if rid not in counts),
            "duplicated": sum(1 for rid in answered if counts.get(rid, 0) > 1),
            "files written": sum(1 for p in glob.glob(g.access_log + "*") if faults.ids_in(p)),
            "hand-overs": errors.count("stops gracefully"),
            "workers booted": errors.count("Booting worker") - g.workers,
            "tracebacks": (errors + g.output()).count("Traceback"),
            "master alive": master_alive,
        }
        print("\nissue-9 wrong-owner storm: " + json.dumps(row))
        return row
    finally:
        layout.remove()


@pytest.mark.parametrize("keep_alive", [False, True], ids=["per-request", "keep-alive"])
@pytest.mark.parametrize("name", ["uvicorn-0.13.1", "uvicorn-0.29.0"])
def test_wrong_owner_storm_fails_no_request_and_loses_no_line(name, keep_alive):
    row = wrong_owner_storm(name, {}, keep_alive)
    assert row["master alive"], row
    assert row["failed"] == 0 and row["answered"] == row["sent"], row
    assert row["lost"] == 0 and row["duplicated"] == 0, row
    assert row["hand-overs"] > 0 and row["files written"] > 1, row
    assert row["tracebacks"] == 0, row


def test_control_wrong_owner_storm_0_13_1_never_reopens():
    row = wrong_owner_storm("uvicorn-0.13.1", {"UVICORN_USR1_PATCH": "0"})
    assert row["files written"] == 1 and row["hand-overs"] == 0, row


# -- the 0.19+ controls: their synchronous handler under a dense storm ------------------------

DENSE_INTERVAL, DENSE_SECONDS = 0.005, 4.0


@pytest.mark.parametrize(
    "unpatched,patched", [("sync-0.54.0", "ours-0.54.0"), ("sync-uvicorn-worker", "ours-uvicorn-worker")]
)
def test_synchronous_handler_prints_tracebacks_and_the_patch_none(unpatched, patched, tmp_path):
    def dense_storm(name):
        (setup,) = common.setups_by_name([name])
        row = storm.run_one(setup, "master", DENSE_SECONDS, DENSE_INTERVAL, 8, str(tmp_path / name))
        assert row["rot"] == int(round(DENSE_SECONDS / DENSE_INTERVAL)), row
        assert row["ok"] > 1000 and row["failed"] == 0, row  # the storm ran under load
        assert row["lost acc/app"] == "0/0" and row["restarts"] == 0, row
        return row

    control = dense_storm(unpatched)
    assert control["Logging error"] > 0 and control["tracebacks"] > 0, control
    fixed = dense_storm(patched)
    assert fixed["Logging error"] == 0 and fixed["tracebacks"] == 0, fixed
