"""Requests/s through a patched vs an unpatched worker: `python bench/request_path.py`.

Same venv, same release, same load: the unpatched arm sets UVICORN_USR1_PATCH=0, which turns the
.pth off, so the only difference is the patch. Both gunicorns (2 workers each, 127.0.0.1) run
side by side; bench/loadclient.py (8 keep-alive connections, renewed every 50 requests so both
workers serve) loads one, then the other, in alternating order, `--seconds` each, `--rounds`
times, after a 1 s warm-up each; no signal is sent. Short alternated slices keep other jobs on
the machine from landing on one arm. The table gives median requests/s per arm and the median
of the per-round ratios patched/unpatched.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: E402
from tools.gunicorn_run import Gunicorn  # noqa: E402

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "loadclient.py")
RELEASES = {"0.13.1": common.UV013, "0.54.0": common.UV054}


def requests_per_second(port, seconds, workdir):
    out = os.path.join(workdir, "client.json")
    subprocess.run([sys.executable, CLIENT, str(port), str(seconds), "8", out], check=True, timeout=60)
    with open(out) as f:
        result = json.load(f)
    assert not result["failed"], "failed requests without any signal: {}".format(len(result["failed"]))
    return len(result["ok"]) / result["seconds"]


def compare(venv, rounds, seconds):
    """{arm: [req/s per round]} with both servers up and the load switched between them."""
    workdir = tempfile.mkdtemp(prefix="request-path-")
    servers = {
        name: Gunicorn(
            venv,
            os.path.join(workdir, name),
            env=env,
            app="asgi3_app:app",
            extra_args=["--chdir", common.BENCH_APPS],
        )
        for name, env in (("patched", {}), ("unpatched", common.OFF))
    }
    rps = {name: [] for name in servers}
    try:
        for g in servers.values():
            g.start()
            requests_per_second(g.port, 1, workdir)  # warm-up
        names = sorted(servers)
        for r in range(rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                rps[name].append(requests_per_second(servers[name].port, seconds, workdir))
    finally:
        for g in servers.values():
            g.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return rps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--releases", default=",".join(RELEASES))
    args = parser.parse_args(argv)
    common.raise_priority()
    print(common.machine_header("request path: patched vs unpatched worker, no signals"), flush=True)
    rows = []
    for release in [r for r in args.releases.split(",") if r]:
        python, requirements = RELEASES[release].python, RELEASES[release].requirements
        venv = common.venvs.ensure(python, requirements, with_patch=True)
        rps = compare(venv, args.rounds, args.seconds)
        ratios = [a / b for a, b in zip(rps["patched"], rps["unpatched"])]
        rows.append(
            [
                "py{} {}".format(python, " ".join(requirements)),
                "{:.0f}".format(common.median(rps["unpatched"])),
                "{:.0f}".format(common.median(rps["patched"])),
                "{:.3f}".format(common.median(ratios)),
                " ".join("{:.3f}".format(x) for x in ratios),
            ]
        )
        print("# done", release, flush=True)
    print()
    print(common.table(["stack", "unpatched req/s", "patched req/s", "ratio (median)", "per round"], rows))
    print("# {} alternated rounds of {:.1f} s per arm".format(args.rounds, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
