"""Rename + SIGUSR1 storm under load, per server setup.

    python bench/storm.py [--duration S] [--setups a,b] [--modes master,everyone] [--quick]

For each setup (see common.SETUPS; each its own cached venv) and each mode, a real gunicorn with
2 workers serves bench/apps/asgi3_app.py on 127.0.0.1 while loadclient.py keeps 8 keep-alive
connections busy at full speed. Every `--interval` (100 ms) the rotator renames access.log and the
app's app.log to *.NNNN and sends SIGUSR1 by PID: to the master only (`master`, what
`kill -USR1 $(cat gunicorn.pid)` does) or to the master and every worker (`everyone`, what the
report's `killall -s USR1 gunicorn` does). It then polls the new files: reopen latency is
"signal sent -> the master has created the new access.log" (master), "-> first access line in
the new access.log" (first line) and "-> both workers' lines in the new app.log" (all workers);
"master->first line" is the workers' share (rotations where both happened);
"missed m/f/a" counts rotations where that did not happen before the next one (~98 ms), and a
rename is skipped when the file was not recreated by the next rotation.

Afterwards: every answered request id is looked up in all access.log* / app.log* files (lost =
answered but no line, dup = more than one line), worker restarts = "Booting worker" lines beyond
the first two, and the error log + the master's stderr are searched for `--- Logging error ---`,
`reentrant call` and any traceback. Default: every setup, both modes, 20 s each (about 8 min).
`--quick` (CI): every setup, `everyone` only, 1 s each (under a minute once the venvs exist).
Exit 1 when a run raised (its row says ERROR).
"""

import argparse
import collections
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: E402
from tools.gunicorn_run import Gunicorn  # noqa: E402

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "loadclient.py")
ID = re.compile(rb"[?&]id=([0-9]+-[0-9]+)")
PID = re.compile(rb" pid=([0-9]+)")
WARMUP = 1.0


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _rename(path, to):
    try:
        os.rename(path, to)
        return True
    except FileNotFoundError:  # nobody recreated it since the last rotation
        return False


def rotate_and_watch(g, mode, rotations, interval):
    """The rotator: returns ({latency name: [seconds or None per rotation]}, renames skipped)."""
    master, first, every, skipped = [], [], [], [0, 0]
    start = time.monotonic() + WARMUP
    for i in range(rotations):
        tick = start + i * interval
        time.sleep(max(0.0, tick - time.monotonic()))
        ok_access = _rename(g.access_log, "{}.{:04d}".format(g.access_log, i))
        ok_app = _rename(g.app_log, "{}.{:04d}".format(g.app_log, i))
        skipped[0] += not ok_access
        skipped[1] += not ok_app
        targets = [g.master_pid] + (g.worker_pids() if mode == "everyone" else [])
        sent = time.monotonic()
        for pid in targets:
            try:
                os.kill(pid, signal.SIGUSR1)
            except ProcessLookupError:  # a worker that just died (uvicorn 0.13.3-0.18.3)
                pass
        t_master = t_first = t_every = None
        limit = tick + interval - 0.002
        while time.monotonic() < limit and (t_first is None or t_every is None):
            now = time.monotonic()
            # the master's reopen_files() creates the new access.log before it signals the workers
            if t_master is None and os.path.exists(g.access_log):
                t_master = now - sent
            if t_first is None and os.path.exists(g.access_log) and os.path.getsize(g.access_log) > 0:
                t_first = now - sent
            if t_every is None and len(set(PID.findall(_read(g.app_log)))) >= g.workers:
                t_every = now - sent
            time.sleep(0.0005)
        master.append(t_master)
        first.append(t_first)
        every.append(t_every)
    return {"master": master, "first line": first, "all workers": every}, skipped


def lines_by_id(pattern):
    counts = collections.Counter()
    for path in glob.glob(pattern):
        counts.update(ID.findall(_read(path)))
    return counts


def run_one(setup, mode, duration, interval, connections, workdir):
    venv = setup.venv()
    rotations = int(round(duration / interval))
    g = Gunicorn(
        venv,
        workdir,
        worker_class=setup.worker_class,
        env=setup.env,
        app="asgi3_app:app",
        extra_args=["--chdir", common.BENCH_APPS],
    )
    out = os.path.join(workdir, "client.json")
    with g:
        seconds = WARMUP + rotations * interval + 0.5
        client = subprocess.Popen(
            [sys.executable, CLIENT, str(g.port), str(seconds), str(connections), out], cwd=workdir
        )
        try:
            latencies, skipped = rotate_and_watch(g, mode, rotations, interval)
        finally:
            client.wait(seconds + 60)
    # gunicorn is stopped: every line is flushed
    result = json.load(open(out))
    ok = [r.encode() for r in result["ok"]]
    access = lines_by_id(g.access_log + "*")
    # files that received at least one request line: ~all of them when workers follow the renames
    written = sum(1 for path in glob.glob(g.access_log + "*") if ID.search(_read(path)))
    app = lines_by_id(g.app_log + "*")
    logs = _read(g.error_log) + _read(g.stderr_path)
    ms = lambda v: "never" if v is None else "{:.1f}".format(v * 1000)  # noqa: E731
    row = {
        "setup": setup.name,
        "mode": mode,
        "rot": rotations,
        "ok": len(ok),
        "failed": len(result["failed"]),
        "req/s": int(len(ok) / result["seconds"]),
        "lost acc/app": "{}/{}".format(
            sum(1 for r in ok if r not in access), sum(1 for r in ok if r not in app)
        ),
        "dup acc/app": "{}/{}".format(sum(1 for r in ok if access[r] > 1), sum(1 for r in ok if app[r] > 1)),
        "restarts": max(0, logs.count(b"Booting worker") - g.workers),
        "Logging error": logs.count(b"--- Logging error ---"),
        # each `Logging error` block holds three "RuntimeError: reentrant call" lines (chained)
        "reentrant lines": logs.count(b"RuntimeError: reentrant call"),
        "tracebacks": logs.count(b"Traceback (most recent call last)"),
    }
    for name, values in latencies.items():
        row[name + " p50/p99 ms"] = "{}/{}".format(
            ms(common.percentile(values, 50)), ms(common.percentile(values, 99))
        )
    # the workers' share: master created the new access.log -> first line in it
    workers_part = [
        f - m for m, f in zip(latencies["master"], latencies["first line"]) if m is not None and f is not None
    ]
    row["master->first line p50/p99 ms"] = "{}/{}".format(
        ms(common.percentile(workers_part, 50)), ms(common.percentile(workers_part, 99))
    )
    row["missed m/f/a"] = "/".join(str(sum(v is None for v in values)) for values in latencies.values())
    row.update(
        {
            "files written": "{}/{}".format(written, rotations + 1),
            "renames skipped acc/app": "{}/{}".format(*skipped),
        }
    )
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of rotations per run (20)")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between rotations (0.1)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--setups",
        default="",
        help="comma-separated names (default: all): " + ", ".join(s.name for s in common.SETUPS),
    )
    parser.add_argument("--modes", default="master,everyone")
    parser.add_argument("--keep", action="store_true", help="keep the work directories")
    parser.add_argument("--quick", action="store_true", help="CI: --duration 1 --modes everyone")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.modes = 1.0, "everyone"
    common.raise_priority()
    setups = common.setups_by_name([n for n in args.setups.split(",") if n])
    modes = [m for m in args.modes.split(",") if m]
    print(
        common.machine_header(
            "storm: rename + SIGUSR1 every {:.0f} ms for {:.0f} s under load, 2 workers".format(
                args.interval * 1000, args.duration
            )
        ),
        flush=True,
    )
    rows = []
    started = time.monotonic()
    for setup in setups:
        for mode in modes:
            workdir = tempfile.mkdtemp(prefix="storm-{}-{}-".format(setup.name, mode))
            try:
                row = run_one(setup, mode, args.duration, args.interval, args.connections, workdir)
            except Exception as exc:  # one broken stack must not hide the others
                row = {
                    "setup": setup.name,
                    "mode": mode,
                    "rot": "ERROR {}: {}".format(type(exc).__name__, exc)[:200],
                }
            finally:
                if not args.keep:
                    shutil.rmtree(workdir, ignore_errors=True)
                else:
                    print("# kept", workdir)
            rows.append(row)
            print(
                "# done {} {} ({:.0f} s so far)".format(setup.name, mode, time.monotonic() - started),
                flush=True,
            )
    headers = (
        list(next(r for r in rows if "ok" in r).keys())
        if any("ok" in r for r in rows)
        else ["setup", "mode", "rot"]
    )
    print()
    print(common.table(headers, [[r.get(h, "") for h in headers] for r in rows]))
    print(
        "# versions: "
        + "; ".join(
            "{}: py{} {}{}".format(
                s.name,
                s.python,
                " ".join(s.requirements),
                " " + " ".join("{}={}".format(k, v) for k, v in s.env.items()) if s.env else "",
            )
            for s in setups
        )
    )
    print("# total {:.0f} s".format(time.monotonic() - started))
    return 1 if any("ok" not in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
