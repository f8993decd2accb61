"""Shared by the bench scripts: machine header, tables, medians, the setups and their venvs."""

import os
import platform
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tools import stacks, venvs  # noqa: E402
from uvicorn_usr1_patch.releases import version_key  # noqa: E402

BENCH_APPS = os.path.join(REPO, "bench", "apps")


def raise_priority(increment=-10):
    """Run this bench (and the servers and clients it starts) at nice -10 when allowed.

    Other jobs on a shared 2-core machine otherwise decide the latencies; every setup gets the
    same priority, so comparisons stay fair. Returns the niceness in effect.
    """
    try:
        return os.nice(increment)
    except OSError:
        return os.nice(0)


def machine_header(title):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    pythons = " ".join(sorted(venvs.pythons(), key=version_key))
    return "\n".join(
        [
            "# " + title,
            "# date: {}".format(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())),
            "# machine: nproc={} cpu={!r} kernel={}".format(os.cpu_count(), cpu, platform.release()),
            "# load average at start: {} (other jobs on the machine); niceness {}".format(
                " ".join(open("/proc/loadavg").read().split()[:3]), os.nice(0)
            ),
            "# driver Python {}; pyenv Pythons: {}".format(platform.python_version(), pythons),
            "# command: python " + " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:]),
        ]
    )


def table(headers, rows):
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def percentile(values, q):
    """Nearest-rank percentile; None entries (never happened) sort last, as infinity."""
    ordered = sorted(values, key=lambda v: float("inf") if v is None else v)
    if not ordered:
        return None
    rank = max(1, int(-(-q * len(ordered) // 100)))  # ceil(q/100 * n)
    return ordered[rank - 1]


class Setup(object):
    """One server stack: a venv, the worker class, extra env, and how to make it."""

    def __init__(self, name, python, requirements, with_patch, worker_class, env=None, hand_edit=False):
        self.name = name
        self.python = python
        self.requirements = requirements
        self.with_patch = with_patch
        self.worker_class = worker_class
        self.env = dict(env or {})
        self.hand_edit = hand_edit

    def venv(self):
        venv = venvs.ensure(self.python, self.requirements, with_patch=self.with_patch)
        return hand_edited_copy(venv) if self.hand_edit else venv


OFF = {"UVICORN_USR1_PATCH": "0"}


def _setup(name, stack, with_patch=True, env=None, hand_edit=False):
    return Setup(name, stack.python, stack.requirements, with_patch, stack.worker, env, hand_edit)


# The stacks are tools/stacks.py's: one name, one Python and gunicorn, in the tests too.
UV013, UV018 = stacks.STACKS["uvicorn-0.13.1"], stacks.STACKS["uvicorn-0.18.3"]
UV054, UVW = stacks.STACKS["uvicorn-0.54.0"], stacks.STACKS["uvicorn-worker-0.4.0"]
SETUPS = [
    _setup("ours-0.13.1", UV013),
    _setup("unpatched-0.13.1", UV013, env=OFF),
    _setup("handedit-0.13.1", UV013, with_patch=False, hand_edit=True),
    _setup("ours-0.18.3", UV018),
    _setup("unpatched-0.18.3", UV018, env=OFF),
    _setup("ours-0.54.0", UV054),
    _setup("sync-0.54.0", UV054, env=OFF),
    _setup("ours-uvicorn-worker", UVW),
    _setup("sync-uvicorn-worker", UVW, env=OFF),
    _setup("gunicorn-asgi", stacks.GUNICORN_ASGI, with_patch=False),
]


def setups_by_name(names):
    known = {s.name: s for s in SETUPS}
    if not names:
        return list(SETUPS)
    missing = [n for n in names if n not in known]
    if missing:
        sys.exit("unknown setup(s) {}; known: {}".format(", ".join(missing), ", ".join(known)))
    return [known[n] for n in names]


HAND_EDIT_OLD = "    def init_signals(self):\n        pass\n"
HAND_EDIT_NEW = (
    "    def init_signals(self):\n"
    "        import signal  # the report's one-line fix, as typed into site-packages\n"
    "        signal.signal(signal.SIGUSR1, self.handle_usr1)\n"
)


def hand_edited_copy(venv):
    """A copy of an unpatched venv with the report's edit in uvicorn/workers.py.

    The cached venv is shared with the tests, so it is copied (next to it) rather than edited;
    the scripts' shebangs are pointed at the copy's own python.
    """
    target = venv.path + "-bench-handedit"
    marker = os.path.join(target, ".bench-handedit")
    if not os.path.exists(marker):
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(venv.path, target, symlinks=True)
        for name in os.listdir(os.path.join(target, "bin")):
            path = os.path.join(target, "bin", name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                data = f.read()
            if venv.path.encode() in data:
                with open(path, "wb") as f:
                    f.write(data.replace(venv.path.encode(), target.encode()))
        copy = venvs.Venv(target)
        workers = os.path.join(copy.site_packages(), "uvicorn", "workers.py")
        with open(workers) as f:
            source = f.read()
        if HAND_EDIT_OLD not in source:
            raise RuntimeError("no `init_signals: pass` to hand-edit in " + workers)
        with open(workers, "w") as f:
            f.write(source.replace(HAND_EDIT_OLD, HAND_EDIT_NEW))
        subprocess.call(
            [
                copy.python,
                "-c",
                "import compileall,sys; compileall.compile_file(sys.argv[1], quiet=2)",
                workers,
            ]
        )
        open(marker, "w").close()
    return venvs.Venv(target)
