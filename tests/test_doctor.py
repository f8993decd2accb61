"""`python -m uvicorn_usr1_patch` names each release's own USR1 behaviour and says whether
workers started from the environment get the loop-safe reopen (exit 0) or not (exit 1)."""

import json
import os
import subprocess

import pytest

from tools import venvs
from tools.stacks import STACKS, venv
from uvicorn_usr1_patch.releases import DEFERRED

FAKES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fakes")


def doctor(name, *args, env=None, python_args=(), python=None):
    full_env = dict(os.environ)
    full_env.pop("PYTHONPATH", None)
    full_env.update(env or {})
    python = python or venv(name).python
    cmd = [python] + list(python_args) + ["-m", "uvicorn_usr1_patch"] + list(args)
    out = subprocess.run(
        cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60
    )
    return out.returncode, out.stdout, out.stderr


@pytest.mark.parametrize("name", sorted(STACKS))
def test_doctor_ok_when_the_hook_is_active(name):
    code, out, err = doctor(name, "--json")
    report = json.loads(out)
    assert code == 0, out + err
    assert report["ok"] and report["hook_active"]
    worker = report["workers"][-1]
    assert worker["unpatched"] == STACKS[name].family
    assert worker["in_gunicorn_workers"] == DEFERRED


@pytest.mark.parametrize("name", sorted(STACKS))
def test_doctor_not_ok_when_turned_off(name):
    code, out, _ = doctor(name, env={"UVICORN_USR1_PATCH": "0"})
    assert code == 1
    assert "NOT OK" in out
    assert "unset UVICORN_USR1_PATCH" in out


def test_doctor_says_what_to_do_when_the_pth_is_skipped():
    # python -S processes no .pth: the package is importable only through PYTHONPATH here
    site_packages = venv("uvicorn-0.13.1").site_packages()
    code, out, _ = doctor("uvicorn-0.13.1", env={"PYTHONPATH": site_packages}, python_args=["-S"])
    assert code == 1
    assert "USR1 ignored" in out
    assert "sitecustomize.py" in out


def test_bad_arguments_exit_2():
    code, _, err = doctor("uvicorn-0.13.1", "--bogus")
    assert code == 2 and "usage" in err and "unexpected: --bogus" in err and len(err.splitlines()) == 1


def test_help_is_real_help():
    for args in (["doctor", "--help"], ["doctor", "-h"]):
        code, out, err = doctor("uvicorn-0.13.1", *args)
        assert (code, err) == (0, ""), err
        assert out.startswith("usage: python -m uvicorn_usr1_patch [doctor] [--json]")
        assert "not a reload" in out or "HUP" in out


# -- a missing or broken piece: the right advice, and always a report ---------------------------
def without_gunicorn(name):
    """The stack's venv without gunicorn: uvicorn (and this package) only."""
    stack = STACKS[name]
    return venvs.ensure(stack.python, [r for r in stack.requirements if not r.startswith("gunicorn")])


@pytest.mark.parametrize("name", ["uvicorn-0.18.3", "uvicorn-0.54.0"])
def test_plain_uvicorn_without_gunicorn_is_ok_when_patched(name):
    """No gunicorn: plain uvicorn is what runs here; patched, the doctor says it reopens (exit 0;
    it said "no UvicornWorker found" / "pip install gunicorn", exit 1, before)."""
    python = without_gunicorn(name).python
    code, out, err = doctor(None, python=python)
    assert code == 0, out + err
    assert "gunicorn            not installed" in out
    assert "uvicorn.workers     needs gunicorn (not installed): plain uvicorn only" in out
    assert "verdict             OK: plain uvicorn reopens its logs on USR1, from the event loop" in out
    assert "next                nothing: plain uvicorn reopens its logs on USR1" in out
    assert "install gunicorn" not in out and "install uvicorn " not in out

    # the control: the same venv with the patch turned off: what uvicorn does alone, exit 1
    code, out, _ = doctor(None, "--json", python=python, env={"UVICORN_USR1_PATCH": "0"})
    report = json.loads(out)
    assert (code, report["ok"]) == (1, False)
    assert report["next"] == "unset UVICORN_USR1_PATCH (it turns the patch off)"
    parts = report["plain_uvicorn"]
    assert [p["here"] for p in parts] == [p["unpatched"] for p in parts]
    assert parts[0]["here"] == "server-dies"


@pytest.mark.parametrize(
    "fake, error",
    [
        ("broken_gunicorn", "RuntimeError: gunicorn is broken on purpose"),
        ("exiting_gunicorn", "sys.exit(3) called during the import"),
    ],
)
def test_a_failing_gunicorn_import_is_reported(fake, error):
    # the venv's gunicorn is shadowed by tests/fakes/FAKE/gunicorn, first on PYTHONPATH
    code, out, err = doctor("uvicorn-0.18.3", env={"PYTHONPATH": os.path.join(FAKES, fake)})
    assert code == 1, out + err
    assert "uvicorn.workers     import failed: " + error in out
    assert "next                fix the import of uvicorn.workers" in out and error in out
    assert "install uvicorn" not in out
    code, out, err = doctor("uvicorn-0.18.3", "--json", env={"PYTHONPATH": os.path.join(FAKES, fake)})
    report = json.loads(out)
    assert (code, report["ok"], report["workers"]) == (
        1,
        False,
        [{"class": "uvicorn.workers", "error": error}],
    )


# -- a gunicorn started before the install: the doctor names it; HUP does not cover it, USR2+TERM does
def _pid_in(pidfile, other_than):
    """The pid in `pidfile` when it is not `other_than`; None while it is, or is being rewritten."""
    try:
        with open(pidfile) as f:
            pid = int(f.read())
    except (OSError, ValueError):
        return None
    return pid if pid != other_than else None


def _booted_workers(master, count, previous=(), timeout=60):
    """`count` workers of `master`, none of `previous`, each past init_signals (it holds app.log)."""
    from tools.gunicorn_run import wait_for
    from uvicorn_usr1_patch import procfs

    def booted():
        workers = [
            w for w in procfs.children(master) if w not in previous and procfs.catches_usr1(w) is not None
        ]
        if len(workers) == count and all(_holds(w, "app.log") for w in workers):
            return workers
        return None

    return wait_for(booted, timeout, what="{} booted workers of {}".format(count, master))


def _holds(pid, name):
    from uvicorn_usr1_patch import procfs

    try:
        return any(procfs.fd_target(pid, fd).endswith("/" + name) for fd in procfs.fds(pid))
    except OSError:
        return False


def _usr1_states(master):
    from check_cli import run_json

    code, report = run_json("--pid", master)
    return code, [p["usr1"] for p in report["processes"] if p["role"] == "worker"], report


@pytest.mark.e2e
def test_late_install_needs_restart_and_usr2_term_gives_patched_workers(tmp_path):
    """gunicorn 20.0.4 + uvicorn 0.13.1 started from a venv without the patch, then the patch
    installed: the doctor in that venv says the running master is not covered (it said OK); HUP
    (the control) gives fresh workers that are still unpatched; USR2, then TERM of the old master,
    gives a new master whose workers are patched (docs/check.md's recipe)."""
    import signal

    from tools.gunicorn_run import Gunicorn, wait_for
    from uvicorn_usr1_patch import procfs

    stack = STACKS["uvicorn-0.13.1"]
    late = venvs._ensure(
        str(tmp_path / "venvs"), venvs.require_python(stack.python), stack.python, stack.requirements, False
    )
    g = Gunicorn(late, str(tmp_path / "run")).start()
    new_master = None
    try:
        code, states, _ = _usr1_states(g.master_pid)
        assert (code, states) == (1, ["inherited", "inherited"])  # unpatched: USR1 never reopens
        # the late install, as an operator does it: pip writes the .pth now (uv may link an older copy)
        subprocess.check_call(
            [late.python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", venvs.wheel()],
            stdout=subprocess.DEVNULL,
        )

        code, out, err = doctor(None, "--json", python=late.python)
        report = json.loads(out)
        (running,) = [r for r in report["running"] if r["pid"] == g.master_pid]
        assert running["started_before_install"] and code == 1 and not report["ok"], out + err
        assert "restart gunicorn master {}".format(g.master_pid) in report["next"]
        assert "kill -USR2" in report["next"] and "kill -TERM" in report["next"]
        code, text, _ = doctor(None, python=late.python)
        assert "started BEFORE uvicorn-usr1-patch was installed: NOT covered" in text

        # the control: a reload (HUP) replaces every worker, and the new ones are unpatched too
        before = g.worker_pids()
        os.kill(g.master_pid, signal.SIGHUP)
        _booted_workers(g.master_pid, 2, previous=before)
        wait_for(lambda: not set(before) & set(g.worker_pids()), 30, what="the old workers to go")
        code, states, report = _usr1_states(g.master_pid)
        assert (code, states) == (1, ["inherited", "inherited"])
        (finding,) = [f for f in report["findings"] if f["kind"] == "usr1-not-reopening"]
        assert "after this gunicorn started: restart gunicorn (a reload, HUP, keeps" in finding["fix"]

        # the recipe of docs/check.md, run as printed there: USR2, wait for check's OK, TERM the old
        from test_check_docs import block

        old_workers = g.worker_pids()
        recipe = block("sh usr2-term").replace("/run/gunicorn.pid", g.pidfile)
        env = dict(os.environ, PATH=late.bin + ":" + os.environ["PATH"])
        env.pop("PYTHONPATH", None)
        proc = subprocess.run(
            ["sh", "-c", recipe], env=env, stderr=subprocess.PIPE, universal_newlines=True, timeout=180
        )
        assert proc.returncode == 0, proc.stderr
        g.proc.wait(30)  # the old master finished and exited
        new_master = wait_for(
            lambda: _pid_in(g.pidfile, g.master_pid), 30, what="the new master to be promoted to the pidfile"
        )
        workers = _booted_workers(new_master, 2)
        wait_for(
            lambda: not any(procfs.exists(w) and not procfs.is_zombie(w) for w in old_workers),
            30,
            what="the old workers to exit",
        )
        code, states, report = _usr1_states(new_master)
        assert (code, states) == (0, ["caught", "caught"]), report["problems"]
        assert [p["kind"] for p in report["processes"] if p["role"] == "worker"] == [
            "uvicorn 0.13.1 UvicornWorker, patched"
        ] * 2
        assert report["workers"] == sorted(workers)
        code, out, _ = doctor(None, "--json", python=late.python)
        report = json.loads(out)
        assert [r["started_before_install"] for r in report["running"] if r["pid"] == new_master] == [False]
        assert code == 0 and report["ok"], out
    finally:
        g.stop()
        if new_master and procfs.exists(new_master):
            os.kill(new_master, signal.SIGTERM)
            wait_for(
                lambda: not procfs.exists(new_master) or procfs.is_zombie(new_master),
                30,
                what="the new master to stop",
            )
