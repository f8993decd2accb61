"""python -m tools.matrix [--cells NAME ...] [--write COMPATIBILITY.md] [--json results.json]"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

from tools.matrix import __doc__ as DOC
from tools.matrix.cells import CELLS, by_name
from tools.matrix.report import write_markdown
from tools.matrix.scenarios import run_cell


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.matrix", description=DOC.split("\n")[0])
    parser.add_argument("--cells", nargs="*", help="cell names (default: all)")
    parser.add_argument("--full", action="store_true", help="every scenario on every cell")
    parser.add_argument("--write", metavar="MARKDOWN", help="write the table (e.g. COMPATIBILITY.md)")
    parser.add_argument("--json", metavar="FILE", help="write the raw results")
    parser.add_argument("--from-json", metavar="FILE", help="only rewrite --write from saved results")
    parser.add_argument(
        "--from-results",
        metavar="DIR",
        help="only rewrite --write from a pytest run's MATRIX_RESULTS directory",
    )
    parser.add_argument("--wall", help="with --from-results: the run's wall time in seconds")
    parser.add_argument("--list", action="store_true", help="list the cells")
    args = parser.parse_args(argv)
    if args.list:
        for cell in CELLS:
            print("{:<45} py{:<5} {}".format(cell["name"], cell["python"], " ".join(cell["requirements"])))
        return 0
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        write_markdown(saved["cells"], args.write, saved["wall_seconds"], saved["command"])
        return 0
    if args.from_results:
        outs = []
        for cell in CELLS:
            path = os.path.join(args.from_results, cell["name"] + ".json")
            if os.path.exists(path):
                with open(path) as f:
                    outs.append(json.load(f))
        # the pytest run's wall time when given, else the sum of the cells' own times
        wall = (
            float(args.wall)
            if args.wall
            else sum(o.get("seconds", o.get("install_seconds", 0)) for o in outs)
        )
        command = "MATRIX_RESULTS=DIR pytest -m e2e tests/test_matrix.py` then `python -m tools.matrix "
        command += "--from-results DIR --write " + args.write
        write_markdown(outs, args.write, wall, command)
        return 0
    cells = by_name(args.cells) if args.cells else CELLS
    command = (
        "python -m tools.matrix"
        + (" --cells " + " ".join(args.cells) if args.cells else "")
        + (" --full" if args.full else "")
        + (" --write " + args.write if args.write else "")
    )
    started = time.monotonic()
    workroot = tempfile.mkdtemp(prefix="matrix-")
    outs = []
    try:
        for cell in cells:
            outs.append(run_cell(cell, workroot, full=True if args.full else None))
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    wall = time.monotonic() - started
    print("matrix: {} cells in {:.0f} s".format(len(outs), wall))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cells": outs, "wall_seconds": wall, "command": command}, f, indent=1)
    if args.write:
        write_markdown(outs, args.write, wall, command)
    failed = [o["cell"] for o in outs if "not_installed" in o or not o["verdict"]["ok"]]
    for out in outs:
        if "not_installed" in out:
            print("FAIL {}: cannot install: {}".format(out["cell"], out["not_installed"]))
        elif not out["verdict"]["ok"]:
            print("FAIL {}: {}".format(out["cell"], "; ".join(out["verdict"]["problems"])))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
