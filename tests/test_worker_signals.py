"""In-process checks on real gunicorn + uvicorn classes, in venvs holding PyPI releases.

tests/probes/signal_probe.py installs a real gunicorn master's handlers (Arbiter.init_signals),
builds the worker class as the master does and calls its init_signals. Each stack runs twice:
with UVICORN_USR1_PATCH=0 (the control must show that release's own USR1 behaviour) and
with the package's .pth active (the contract of the patch).
"""

import json
import os
import subprocess

import pytest

from tools import venvs
from tools.stacks import STACKS, venv
from uvicorn_usr1_patch.releases import DEFERRED, PASS, RESET

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
APPS = os.path.join(HERE, "apps")
PROBE = os.path.join(HERE, "probes", "signal_probe.py")


def probe(name, *args, env=None, worker=None, python=None):
    python = python or venv(name).python
    worker = worker or STACKS[name].worker
    full_env = dict(os.environ)
    full_env.pop("PYTHONPATH", None)
    full_env.update(env or {})
    out = subprocess.run(
        [python, PROBE, worker] + list(args),
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout), out.stderr


@pytest.mark.parametrize("name", sorted(STACKS))
def test_control_shows_the_release_behaviour(name):
    report, _ = probe(name, env={"UVICORN_USR1_PATCH": "0"})
    assert report["usr1"] == STACKS[name].family
    if STACKS[name].family == PASS:  # uvicorn <= 0.13.2 keeps every master handler (#894)
        assert "SIGCHLD" in report["master_handlers_left"]


@pytest.mark.parametrize("name", sorted(STACKS))
def test_patched_worker_defers_and_coalesces_usr1(name):
    report, stderr = probe(name)
    assert report["usr1"] == DEFERRED, report
    assert report["master_handlers_left"] == []
    assert report["sigchld"] == "default"
    assert report["calls_without_loop"] == 0  # never inside the signal handler, even at boot
    assert report["calls_at_first_tick"] == 1  # remembered, done once the loop runs
    assert report["calls_during_burst"] == 0  # never inside the signal handler
    assert report["calls_after_burst"] == 1  # five signals, one reopen
    assert report["calls_after_next"] == 2  # a later signal reopens again
    assert report["calls_after_loop_ended"] == 2  # the worker is exiting: dropped...
    assert "SIGUSR1 after the loop ended: dropped" in stderr  # ...with a line saying so
    assert "UvicornUSR1PatchWarning" not in stderr


# What a patched worker has after init_signals, whatever the release: a quick exit for QUIT/INT
# (uvicorn's quick shutdown from the loop, gunicorn's handle_quit without one) and gunicorn's
# handle_abort for ABRT (no core dump, encode/uvicorn#1116), a do-nothing handler for
# TTIN/TTOU (not inherited by exec, unlike SIG_IGN), the default for HUP/USR2/CHLD as in
# gunicorn's own workers. The README's signal table quotes these.
PATCHED_SIGNALS = {
    "SIGQUIT": "quick exit",
    "SIGINT": "quick exit",
    "SIGABRT": "worker.handle_abort",
    "SIGUSR1": "deferred",
    "SIGTTIN": "nothing",
    "SIGTTOU": "nothing",
    "SIGHUP": "default",
    "SIGUSR2": "default",
    "SIGCHLD": "default",
}


@pytest.mark.parametrize("name", sorted(STACKS))
def test_patched_worker_keeps_every_gunicorn_signal_working(name):
    report, _ = probe(name)
    assert {k: report["signals"][k] for k in PATCHED_SIGNALS} == PATCHED_SIGNALS


@pytest.mark.parametrize("name", sorted(STACKS))
def test_control_signal_table(name):
    """The unpatched column of the README's table, per family."""
    report, _ = probe(name, env={"UVICORN_USR1_PATCH": "0"})
    family = STACKS[name].family
    signals = report["signals"]
    assert signals["SIGABRT"] == "default"  # the master's timeout kill dumps core on every release
    if family == PASS:  # 0.4-0.13.2: every master handler inherited
        assert all(signals[s] == "master" for s in ("SIGQUIT", "SIGUSR1", "SIGCHLD", "SIGHUP", "SIGTTIN"))
    elif family == RESET:  # 0.13.3-0.18.3: QUIT and ABRT dump core, USR1 kills
        assert [signals[s] for s in ("SIGQUIT", "SIGABRT", "SIGUSR1")] == ["default"] * 3
        assert signals["SIGTTIN"] == "master"
    else:  # 0.19+ and uvicorn-worker: a synchronous USR1; QUIT through the loop later (0.20+)
        assert signals["SIGUSR1"] == "sync"
        assert signals["SIGTTIN"] == "master"


def test_uvloop_is_the_loop_of_the_reported_release():
    report, _ = probe("uvicorn-0.13.1")
    assert report["loop"] == "uvloop"


def test_h11_worker_subclass_is_patched_too():
    report, _ = probe("uvicorn-0.18.3", worker="uvicorn.workers.UvicornH11Worker")
    assert report["usr1"] == DEFERRED


def test_user_subclass_is_patched():
    report, _ = probe("uvicorn-0.13.1", worker="custom_worker.AppWorker", env={"PYTHONPATH": APPS})
    assert report["usr1"] == DEFERRED
    assert report["loop"] == "asyncio"


def test_undo_restores_everything():
    report, _ = probe("uvicorn-0.54.0", "--uninstall-after")
    assert report["patched_after_uninstall"] is False
    assert "UvicornWorkerFinder" not in report["meta_path_after_uninstall"]


def test_install_without_the_pth():
    """uvicorn_usr1_patch.install(), as gunicorn.conf.py or sitecustomize.py call it."""
    stack = STACKS["uvicorn-0.18.3"]
    bare = venvs.ensure(stack.python, stack.requirements, with_patch=False)
    report, _ = probe("uvicorn-0.18.3", python=bare.python, env={"PYTHONPATH": REPO})
    assert report["usr1"] == RESET  # no .pth in this venv: nothing happens by itself
    report, _ = probe("uvicorn-0.18.3", "--install", python=bare.python, env={"PYTHONPATH": REPO})
    assert report["usr1"] == DEFERRED
    # the variable turns install() off too
    off = {"PYTHONPATH": REPO, "UVICORN_USR1_PATCH": "off"}
    report, _ = probe("uvicorn-0.18.3", "--install", python=bare.python, env=off)
    assert report["usr1"] == RESET


def test_sitecustomize_example_turns_the_patch_on():
    """The example sitecustomize.py, in a venv without the package's .pth."""
    stack = STACKS["uvicorn-0.18.3"]
    bare = venvs.ensure(stack.python, stack.requirements, with_patch=False)
    path = os.pathsep.join([os.path.join(REPO, "sitecustomize_example"), REPO])
    report, stderr = probe("uvicorn-0.18.3", python=bare.python, env={"PYTHONPATH": path})
    assert report["usr1"] == DEFERRED, stderr
