"""The command line around `check` (issue 16): --version, the console script, mistakes named in one
line, `diff VERSION`, no BrokenPipe traceback under `| head`, UVICORN_USR1_PATCH's values."""

import ast
import os
import platform
import re
import subprocess
import sys
import warnings

import pytest
from check_cli import REPO

import uvicorn_usr1_patch
from tools import stacks


def run_module(*args, python=None, env=None):
    full_env = dict(os.environ, PYTHONPATH=REPO)
    full_env.update(env or {})
    proc = subprocess.run(
        [python or sys.executable, "-m", "uvicorn_usr1_patch"] + list(args),
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        timeout=60,
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_version():
    for flag in ("--version", "-V"):
        code, out, err = run_module(flag)
        assert (code, err) == (0, "")
        assert out == "uvicorn-usr1-patch {} (Python {}, {})\n".format(
            uvicorn_usr1_patch.__version__, platform.python_version(), platform.platform()
        )


@pytest.mark.e2e
def test_console_script_beside_python_m():
    """The wheel installs `uvicorn-usr1-patch` (setup.cfg console_scripts), the same command."""
    venv = stacks.venv("uvicorn-0.54.0")
    script = os.path.join(venv.bin, "uvicorn-usr1-patch")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [script, "--version"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
    )
    assert proc.returncode == 0 and proc.stdout.startswith(
        "uvicorn-usr1-patch " + uvicorn_usr1_patch.__version__
    )
    proc = subprocess.run(
        [script, "check", "--pid", "x"], env=env, stderr=subprocess.PIPE, universal_newlines=True
    )
    assert proc.returncode == 2 and "not a pid" in proc.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["chek"], "unknown command 'chek' (choose from check, diff, doctor"),
        (["check", "--pidd", "1"], "unrecognized argument: --pidd (did you mean --pid?)"),
        (["check", "--pid", "1", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
        (["check", "--pid", "1", "--json", "--format", "nagios"], "--json and --format nagios ask for two"),
        (["doctor", "--jsn"], "unexpected: --jsn"),
        (["diff", "0.18.3", "extra"], "unexpected: 0.18.3 extra"),
    ],
)
def test_a_mistake_is_named_in_one_line(args, needle):
    code, out, err = run_module(*args)
    assert code == 2 and out == "" and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and needle in err, err


def test_check_help_is_help():
    code, out, err = run_module("check", "--help")
    assert (code, err) == (0, "") and "--prometheus-textfile PATH" in out and "--format" in out


def test_diff_of_a_named_release():
    """`diff 0.18.3` is that release's diff whatever is installed (it printed the installed one's)."""
    code, out, err = run_module("diff", "0.18.3")
    assert (code, err) == (0, "")
    with open(os.path.join(REPO, "patches", "uvicorn-0.18.3.diff")) as f:
        assert out == f.read()
    code, out, err = run_module("diff", "0.29.0")  # 0.19+ reopens itself: no diff
    assert code == 2 and out == ""
    assert err.startswith("no diff for uvicorn 0.29.0; releases with one: 0.4.0, ") and "0.18.3" in err
    assert err.strip().endswith("0.18.3")


@pytest.mark.parametrize(
    "command",
    [
        "diff 0.18.3 | head -1",
        "check --help | head -1",
        "--help | head -c 10",
        "diff 0.18.3 | (exec 0<&-; sleep 0)",  # the reader closes its end before reading
    ],
)
def test_no_broken_pipe_traceback(command):
    shell = '"$0" -m uvicorn_usr1_patch ' + command + '; echo "status=${PIPESTATUS[0]}" >&2'
    proc = subprocess.run(
        ["bash", "-c", shell, sys.executable],
        env=dict(os.environ, PYTHONPATH=REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert re.search(r"status=[01]$", proc.stderr.strip()), proc.stderr


def test_broken_pipe_keeps_checks_exit_status(tmp_path):
    """check piped into `head`: its own exit status (2: no such pidfile), no traceback."""
    shell = '"$0" -m uvicorn_usr1_patch check --pidfile /nonexistent --json | head -c 1 >/dev/null; '
    shell += 'echo "status=${PIPESTATUS[0]}" >&2'
    proc = subprocess.run(
        ["bash", "-c", shell, sys.executable],
        env=dict(os.environ, PYTHONPATH=REPO),
        stderr=subprocess.PIPE,
        universal_newlines=True,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr and proc.stderr.strip().endswith("status=2"), proc.stderr


# -- UVICORN_USR1_PATCH ---------------------------------------------------------------------------
def pth_off_values():
    """The values the .pth compares against: the tuple literal on its one line."""
    with open(os.path.join(REPO, "uvicorn_usr1_patch.pth")) as f:
        lines = f.read().splitlines()
    assert len(lines) == 1
    found = re.search(r"not in (\([^)]*\))", lines[0])
    return ast.literal_eval(found.group(1))


def test_pth_and_enabled_agree():
    assert pth_off_values() == uvicorn_usr1_patch.OFF
    with open(os.path.join(REPO, "uvicorn_usr1_patch.pth")) as f:
        line = f.read()
    # it imports os and our hook module only, and its hook call sits in a try that cannot let go
    assert re.findall(r"\bimport (\w+)", line) == ["os", "startup"] and "except Exception" in line


@pytest.mark.parametrize("value", ["0", "off", "false", "no", "disable", " NO ", "Disable"])
def test_off_values(value):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert uvicorn_usr1_patch.enabled({"UVICORN_USR1_PATCH": value}) is False
    assert caught == []


@pytest.mark.parametrize("value", ["", "1", "on", "true", "yes"])
def test_on_values(value):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert uvicorn_usr1_patch.enabled({"UVICORN_USR1_PATCH": value}) is True
    assert caught == []


def test_an_unknown_value_is_refused_with_one_warning():
    uvicorn_usr1_patch._warned.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert uvicorn_usr1_patch.enabled({"UVICORN_USR1_PATCH": "nope"}) is True
    (warning,) = caught
    assert "UVICORN_USR1_PATCH='nope' is not a known value" in str(warning.message)
    assert "the patch stays on" in str(warning.message)
    # check reads another process's environment: no warning about it in check's own stderr
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        uvicorn_usr1_patch._warned.clear()
        assert uvicorn_usr1_patch.enabled({"UVICORN_USR1_PATCH": "nope"}, warn=False) is True
    assert caught == []


def test_the_pth_treats_values_as_enabled_does(tmp_path):
    """The .pth line itself, run for each value: the hook runs exactly when enabled() says on."""
    with open(os.path.join(REPO, "uvicorn_usr1_patch.pth")) as f:
        line = f.read().strip()
    hook = tmp_path / "uvicorn_usr1_patch_hook.py"
    hook.write_text("def startup():\n    print('hook ran')\n")
    for value in uvicorn_usr1_patch.OFF + uvicorn_usr1_patch.ON + ("nope",):
        proc = subprocess.run(
            [sys.executable, "-c", line],
            env=dict(os.environ, PYTHONPATH=str(tmp_path), UVICORN_USR1_PATCH=value),
            cwd=str(tmp_path),  # not the checkout: its own uvicorn_usr1_patch_hook.py would come first
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
        )
        assert proc.stderr == ""
        assert (proc.stdout == "hook ran\n") == uvicorn_usr1_patch.enabled(
            {"UVICORN_USR1_PATCH": value}, warn=False
        )
