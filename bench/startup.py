"""Start-up cost of the .pth, on every Python 3.x under $(pyenv root)/versions: `python bench/startup.py`.

Three venvs per Python with the same requirements (fastapi, wrapt): `ours` (this package
installed, so its .pth runs at every start), `none` (without it) and `wrapt-pth` (without it,
plus a one-line .pth doing `import wrapt`, the reference for a .pth that imports its patcher at
start). `python -c pass` and `python -c "import fastapi"` are run in the three, in rotating order
round by round; the table gives medians of wall time and the median of the per-round ratios
ours/none and wrapt-pth/none. Also: the modules present after start in ours but not in none,
the .pth's own `-X importtime` (self time of uvicorn_usr1_patch* lines, 3.7+), and the import
hook's fast path: ns per `find_spec("json")` call on our finder (timeit, in process) next to
an empty function with the same signature.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: E402
from tools import venvs  # noqa: E402
from uvicorn_usr1_patch.releases import version_key  # noqa: E402

REQUIREMENTS = ["fastapi", "wrapt"]
WRAPT_PTH = "bench_import_wrapt.pth"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "UVICORN_USR1_PATCH"}

FIND_SPEC = r"""
import timeit
from uvicorn_usr1_patch_hook import UvicornWorkerFinder
finder = UvicornWorkerFinder()
def empty(fullname, path=None, target=None):
    return None
n = 200000
ours = min(timeit.repeat("f('json')", globals={"f": finder.find_spec}, number=n, repeat=7)) / n
base = min(timeit.repeat("f('json')", globals={"f": empty}, number=n, repeat=7)) / n
print(ours * 1e9, base * 1e9)
"""


def wall(python, code):
    """(wall seconds, CPU seconds user+sys) of one `python -c code`.

    CPU time is reported too because waiting for a core (other jobs on a shared machine)
    inflates wall time but not CPU time.
    """
    started = time.perf_counter()
    proc = subprocess.Popen([python, "-c", code], env=ENV, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0  # reaped here; keep Popen from waiting again
    elapsed = time.perf_counter() - started
    if status != 0:
        raise RuntimeError("{} -c {!r} failed with status {}".format(python, code, status))
    return elapsed, usage.ru_utime + usage.ru_stime


def make_venvs(minor):
    ours = venvs.ensure(minor, REQUIREMENTS, with_patch=True)
    none = venvs.ensure(minor, REQUIREMENTS, with_patch=False)
    # same contents as `none` ("pip" is always installed), a venv of its own for the extra .pth
    ref = venvs.ensure(minor, REQUIREMENTS + ["pip"], with_patch=False)
    pth = os.path.join(ref.site_packages(), WRAPT_PTH)
    if not os.path.exists(pth):
        with open(pth, "w") as f:
            f.write("import wrapt\n")
    return [("ours", ours), ("none", none), ("wrapt-pth", ref)]


def timed_rounds(trio, code, rounds):
    """({name: [wall s]}, {name: [cpu s]}), the venvs run in a rotating order each round."""
    walls = {name: [] for name, _ in trio}
    cpus = {name: [] for name, _ in trio}
    for r in range(rounds):
        order = trio[r % len(trio) :] + trio[: r % len(trio)]
        for name, venv in order:
            w, c = wall(venv.python, code)
            walls[name].append(w)
            cpus[name].append(c)
    return walls, cpus


def paired(times, name):
    return statistics.median([a / b for a, b in zip(times[name], times["none"])])


def added_modules(ours, none):
    code = "import sys; print(' '.join(sorted(sys.modules)))"
    got = {}
    for venv in (ours, none):
        out = subprocess.run([venv.python, "-c", code], env=ENV, check=True, stdout=subprocess.PIPE)
        got[venv] = set(out.stdout.decode().split())
    return sorted(got[ours] - got[none])


def importtime_us(ours, runs=5):
    values = []
    for _ in range(runs):
        out = subprocess.run(
            [ours.python, "-X", "importtime", "-c", "pass"], env=ENV, stderr=subprocess.PIPE, check=True
        )
        total = 0
        for line in out.stderr.decode().splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 3 and parts[2].startswith("uvicorn_usr1_patch"):
                total += int(parts[0].split(":")[1])
        values.append(total)
    return statistics.median(values)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds-pass", type=int, default=40)
    parser.add_argument("--rounds-fastapi", type=int, default=20)
    parser.add_argument("--pythons", default="", help="comma-separated minors (default: every 3.x)")
    args = parser.parse_args(argv)
    common.raise_priority()
    print(
        common.machine_header("start-up cost of the .pth (ours) vs none vs a .pth importing wrapt"),
        flush=True,
    )
    minors = [m for m in args.pythons.split(",") if m] or sorted(venvs.pythons(), key=version_key)
    rows, extras = [], []
    for minor in minors:
        try:
            trio = make_venvs(minor)
        except Exception as exc:
            reason = getattr(exc, "output", "") or str(exc)
            rows.append([minor, "cannot install: " + reason.strip().splitlines()[-1][:80]] + [""] * 10)
            continue
        ours, none = trio[0][1], trio[1][1]
        # (Venv.versions needs importlib.metadata or pkg_resources: a 3.6 venv may have neither)
        versions = dict(
            zip(
                ("fastapi", "wrapt"),
                subprocess.check_output(
                    [
                        ours.python,
                        "-c",
                        "import fastapi, wrapt; print(fastapi.__version__, wrapt.__version__)",
                    ],
                    env=ENV,
                )
                .decode()
                .split(),
            )
        )
        pass_t, pass_c = timed_rounds(trio, "pass", args.rounds_pass)
        fast_t, fast_c = timed_rounds(trio, "import fastapi", args.rounds_fastapi)
        ms = lambda ts: "{:.1f}".format(statistics.median(ts) * 1000)  # noqa: E731
        rows.append(
            [
                "{} (fastapi {}, wrapt {})".format(minor, versions["fastapi"], versions["wrapt"]),
                ms(pass_t["none"]),
                ms(pass_t["ours"]),
                "{:.3f}".format(paired(pass_t, "ours")),
                "{:.3f}".format(paired(pass_c, "ours")),
                "{:.3f}".format(paired(pass_t, "wrapt-pth")),
                ms(fast_t["none"]),
                ms(fast_t["ours"]),
                "{:.3f}".format(paired(fast_t, "ours")),
                "{:.3f}".format(paired(fast_c, "ours")),
                "{:.3f}".format(paired(fast_t, "wrapt-pth")),
            ]
        )
        spec = subprocess.run([ours.python, "-c", FIND_SPEC], env=ENV, check=True, stdout=subprocess.PIPE)
        ns_ours, ns_empty = (float(v) for v in spec.stdout.split())
        it = "{:.0f}".format(importtime_us(ours)) if version_key(minor) >= (3, 7) else "n/a (3.6)"
        extras.append(
            [
                minor,
                " ".join(added_modules(ours, none)) or "-",
                it,
                "{:.0f}".format(ns_ours),
                "{:.0f}".format(ns_empty),
            ]
        )
        print("# done", minor, flush=True)
    print()
    print(
        common.table(
            [
                "Python",
                "pass none ms",
                "pass ours ms",
                "pass ours/none",
                "pass ours/none CPU",
                "pass wrapt-pth/none",
                "fastapi none ms",
                "fastapi ours ms",
                "fastapi ours/none",
                "fastapi ours/none CPU",
                "fastapi wrapt-pth/none",
            ],
            rows,
        )
    )
    print(
        "# medians of {} (pass) / {} (import fastapi) alternated rounds;"
        " ratio = median of per-round ratios".format(args.rounds_pass, args.rounds_fastapi)
    )
    print()
    print(
        common.table(
            [
                "Python",
                "modules the .pth adds",
                ".pth -X importtime us (self)",
                "find_spec ns",
                "empty fn ns",
            ],
            extras,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
