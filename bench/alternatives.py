"""What a user would do instead of reopening on SIGUSR1: `python bench/alternatives.py`.

1. logging.handlers.WatchedFileHandler (no signal; one os.stat of the path per record):
   records/s vs a plain logging.FileHandler, single-threaded, on every pyenv Python 3.x
   (stdlib only; `--records` per run, rounds alternated, medians and the median paired ratio).
2. logrotate `copytruncate` (no signal) under the storm's load: a real gunicorn (uvicorn 0.54.0,
   2 workers, 127.0.0.1, bench/loadclient.py at full speed) while the real logrotate binary
   rotates access.log with a copytruncate config every `--interval` (or back to back when a run
   of logrotate takes longer) while the load runs (`--duration` s). Every
   answered request id is looked up in access.log*: lines lost per rotation.
"""

import argparse
import collections
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: E402
from bench.storm import ID, WARMUP, _read  # noqa: E402
from tools import venvs  # noqa: E402
from tools.gunicorn_run import Gunicorn  # noqa: E402
from uvicorn_usr1_patch.releases import version_key  # noqa: E402

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "loadclient.py")

HANDLERS = r"""
import logging, logging.handlers, os, sys, tempfile, time
n, rounds = int(sys.argv[1]), int(sys.argv[2])
tmp = tempfile.mkdtemp()
def run(cls):
    path = os.path.join(tmp, cls.__name__ + ".log")
    handler = cls(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log = logging.getLogger(cls.__name__)
    log.propagate = False
    log.handlers = [handler]
    log.setLevel(logging.INFO)
    started = time.perf_counter()
    for i in range(n):
        log.info("GET /api/client?page_size=10&page=%d 200", i)
    elapsed = time.perf_counter() - started
    handler.close()
    os.remove(path)
    return n / elapsed
plain, watched = [], []
for r in range(rounds):
    for cls in ((logging.FileHandler, logging.handlers.WatchedFileHandler) if r % 2 == 0
                else (logging.handlers.WatchedFileHandler, logging.FileHandler)):
        (plain if cls is logging.FileHandler else watched).append(run(cls))
os.rmdir(tmp)
print(" ".join(map(str, plain)), "|", " ".join(map(str, watched)))
"""

LOGROTATE_CONF = """{path} {{
    copytruncate
    rotate 1000
    missingok
    nocompress
}}
"""


def handler_rows(records, rounds):
    rows = []
    for minor, python in sorted(venvs.pythons().items(), key=lambda kv: version_key(kv[0])):
        out = subprocess.run(
            [python, "-c", HANDLERS, str(records), str(rounds)], check=True, stdout=subprocess.PIPE
        ).stdout.decode()
        plain, watched = ([float(x) for x in part.split()] for part in out.split("|"))
        ratios = [w / p for w, p in zip(watched, plain)]
        rows.append(
            [
                minor,
                "{:.0f}".format(statistics.median(plain)),
                "{:.0f}".format(statistics.median(watched)),
                "{:.3f}".format(statistics.median(ratios)),
                "{:.2f}".format((1 / statistics.median(watched) - 1 / statistics.median(plain)) * 1e6),
            ]
        )
    return rows


def copytruncate_row(duration, interval):
    venv = venvs.ensure(common.UV054.python, common.UV054.requirements, with_patch=True)
    workdir = tempfile.mkdtemp(prefix="copytruncate-")
    g = Gunicorn(
        venv, workdir, env=common.OFF, app="asgi3_app:app", extra_args=["--chdir", common.BENCH_APPS]
    )
    conf = os.path.join(workdir, "logrotate.conf")
    state = os.path.join(workdir, "logrotate.state")
    with open(conf, "w") as f:
        f.write(LOGROTATE_CONF.format(path=g.access_log))
    out = os.path.join(workdir, "client.json")
    rotations = int(round(duration / interval))
    costs, failures = [], 0
    try:
        with g:
            seconds = WARMUP + rotations * interval + 0.5
            client = subprocess.Popen([sys.executable, CLIENT, str(g.port), str(seconds), "8", out])
            try:
                start = time.monotonic() + WARMUP
                for i in range(rotations):
                    if client.poll() is not None:  # only rotations under load count
                        break
                    time.sleep(max(0.0, start + i * interval - time.monotonic()))
                    began = time.monotonic()
                    done = subprocess.run(["logrotate", "-f", "-s", state, conf], stderr=subprocess.PIPE)
                    costs.append(time.monotonic() - began)
                    failures += done.returncode != 0
            finally:
                client.wait(seconds + 60)
        result = json.load(open(out))
        counts = collections.Counter()
        files = glob.glob(g.access_log + "*")
        for path in files:
            counts.update(ID.findall(_read(path)))
        ok = [r.encode() for r in result["ok"]]
        lost = sum(1 for r in ok if r not in counts)
        dup = sum(1 for r in ok if counts[r] > 1)
        return [
            "logrotate copytruncate",
            "{} ({} failed)".format(len(costs), failures),
            len(ok),
            len(result["failed"]),
            int(len(ok) / result["seconds"]),
            lost,
            "{:.1f}".format(lost / max(1, len(costs) - failures)),
            "{:.3%}".format(lost / max(1, len(ok))),
            dup,
            "{:.1f}".format(statistics.median(costs) * 1000),
        ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=0.1)
    args = parser.parse_args(argv)
    common.raise_priority()
    print(common.machine_header("alternatives: WatchedFileHandler; logrotate copytruncate"), flush=True)
    rows = handler_rows(args.records, args.rounds)
    print()
    print(
        common.table(
            ["Python", "FileHandler rec/s", "WatchedFileHandler rec/s", "watched/plain", "extra us/record"],
            rows,
        )
    )
    print("# {} records per run, {} alternated rounds, medians".format(args.records, args.rounds), flush=True)
    print()
    row = copytruncate_row(args.duration, args.interval)
    print(
        common.table(
            [
                "method",
                "rotations",
                "ok",
                "failed",
                "req/s",
                "lost",
                "lost/rotation",
                "lost %",
                "dup",
                "logrotate run ms (median)",
            ],
            [row],
        )
    )
    print(
        "# py{} {}, 2 workers, rotation every {:.0f} ms for {:.0f} s".format(
            common.UV054.python, " ".join(common.UV054.requirements), args.interval * 1000, args.duration
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
