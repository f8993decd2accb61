"""Plain uvicorn (no gunicorn), real processes: `uvicorn asgi_app:app --log-config` with
logging.FileHandlers, rename the logs, SIGUSR1 to the main process by PID (issue 11).

Patched: the process lives, the worker PIDs stay, every post-rotation line is in the new file,
no request fails. Each control (UVICORN_USR1_PATCH=0) must show what uvicorn does alone: the
single server dies; the <= 0.29 supervisor dies and orphans its workers, which keep serving
into the renamed file; the 0.30+ supervisor swallows the signal (old file); --reload dies.

One cell per family of tools/server_families.py; the full single/--workers x uvloop/asyncio
grid on 0.14.0 (the oldest in range), 0.29.0 and 0.54.0 (the newest).
"""

import json
import os
import signal
import subprocess
import time

import pytest

from tools import server_families, uvicorn_run
from tools.gunicorn_run import count_lines, wait_for
from tools.uvicorn_run import LOOPS, OFF, Uvicorn, storm

pytestmark = pytest.mark.e2e

BY_RELEASE = {f.tested: f for f in server_families.FAMILIES.values()}
GRID = ["0.14.0", "0.29.0", "0.54.0"]
REOPEN_DEADLINE = 10  # patched: every process holds the new files long before
CONTROL_DEADLINE = 3  # unpatched: nothing ever reopens; the assertions show what happened
# Storm size: 200 rotations in 20 s by hand (`UVICORN_USR1_PATCH_STORM=200/20`); CI runs a
# shorter one to stay within its time budget.
STORM = tuple(int(n) for n in os.environ.get("UVICORN_USR1_PATCH_STORM", "60/6").split("/"))


def rotate(release, tmp_path, mode, loop="uvloop-httptools", env=None, deadline=REOPEN_DEADLINE):
    return uvicorn_run.rotate(release, str(tmp_path), mode, loop, env, deadline)


def assert_reopened(result):
    assert result["returncode"] is None, "the main process died: {}".format(result["returncode"])
    assert result["after"] == result["before"], "a worker was restarted"
    assert result["failed"] == 0
    assert (result["new"], result["old"], result["app_new"]) == (10, 0, 10)
    assert result["orphans"] == []
    assert "Traceback" not in result["output"] and "Logging error" not in result["output"]


# -- the grid: 0.14.0, 0.29.0, 0.54.0 x single/--workers 2 x uvloop/asyncio ----------------------
@pytest.mark.parametrize("loop", sorted(LOOPS))
@pytest.mark.parametrize("mode", ["single", "workers"])
@pytest.mark.parametrize("release", GRID)
def test_patched_usr1_reopens_and_nothing_dies(release, mode, loop, tmp_path):
    assert_reopened(rotate(release, tmp_path, mode, loop))


@pytest.mark.parametrize("loop", sorted(LOOPS))
@pytest.mark.parametrize("release", GRID)
def test_control_single_server_dies_of_usr1(release, loop, tmp_path):
    result = rotate(release, tmp_path, "single", loop, env=OFF, deadline=CONTROL_DEADLINE)
    assert result["returncode"] == -signal.SIGUSR1
    assert result["failed"] == 10  # every request after the signal fails: an outage


@pytest.mark.parametrize("loop", sorted(LOOPS))
@pytest.mark.parametrize("release", ["0.14.0", "0.29.0"])
def test_control_old_supervisor_dies_and_orphans_its_workers(release, loop, tmp_path):
    result = rotate(release, tmp_path, "workers", loop, env=OFF, deadline=CONTROL_DEADLINE)
    assert result["returncode"] == -signal.SIGUSR1
    assert sorted(result["orphans"]) == sorted(result["before"])  # alive, reparented
    assert (result["failed"], result["new"], result["old"]) == (0, 0, 10)  # serving into the old file


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_control_0_54_supervisor_swallows_usr1(loop, tmp_path):
    result = rotate("0.54.0", tmp_path, "workers", loop, env=OFF, deadline=CONTROL_DEADLINE)
    assert result["returncode"] is None and result["after"] == result["before"]
    assert (result["failed"], result["new"], result["old"]) == (0, 0, 10)
    assert result["main_holds_old_file"]


# -- uvicorn.run(log_config=dict[, workers=2]) from a program ---------------------------------------
@pytest.mark.parametrize(
    "release, mode",
    [("0.14.0", "run"), ("0.29.0", "run-workers"), ("0.54.0", "run"), ("0.54.0", "run-workers")],
)
def test_patched_uvicorn_run(release, mode, tmp_path):
    assert_reopened(rotate(release, tmp_path, mode))


def test_control_uvicorn_run_dies_of_usr1(tmp_path):
    result = rotate("0.54.0", tmp_path, "run", env=OFF, deadline=CONTROL_DEADLINE)
    assert result["returncode"] == -signal.SIGUSR1


# -- one cell per family: --workers and --reload ---------------------------------------------------
FAMILY_CELLS = sorted(set(BY_RELEASE) - set(GRID), key=server_families.make_patches.version_key)


def test_every_family_has_a_cell():
    assert sorted(set(FAMILY_CELLS) | set(GRID)) == sorted(BY_RELEASE)


@pytest.mark.parametrize("release", FAMILY_CELLS)
def test_family_workers(release, tmp_path):
    assert_reopened(rotate(release, tmp_path, "workers"))


@pytest.mark.parametrize("release", sorted(BY_RELEASE, key=server_families.make_patches.version_key))
def test_reload_supervisor_relays_usr1(release, tmp_path):
    assert_reopened(rotate(release, tmp_path, "reload"))


def test_control_reload_supervisor_dies_of_usr1(tmp_path):
    result = rotate("0.54.0", tmp_path, "reload", env=OFF, deadline=CONTROL_DEADLINE)
    assert result["returncode"] == -signal.SIGUSR1
    assert result["orphans"] == result["before"]
    assert (result["new"], result["old"]) == (0, 10)


# -- storm --------------------------------------------------------------------------------------
# the two supervisor shapes, and the single server
@pytest.mark.parametrize(
    "release, mode", [("0.29.0", "workers"), ("0.54.0", "workers"), ("0.54.0", "single")]
)
def test_storm_under_load(release, mode, tmp_path):
    rotations, seconds = STORM
    with Uvicorn(uvicorn_run.family_venv(release), str(tmp_path), mode=mode) as server:
        result = storm(server, rotations, seconds)
    print(release, mode, result)  # quoted in COMPATIBILITY.md (pytest -s)
    assert result["alive"] and result["requests"] > rotations
    assert (result["lost"], result["app_lost"], result["failed"]) == (0, 0, 0)
    assert (result["restarts"], result["tracebacks"]) == (0, 0)
    assert result["final_in_new_file"] == 10
    assert result["rotated_files_with_lines"] > 1  # reopened during the storm, not only at its end


def test_control_storm_loses_the_server(tmp_path):
    """Unpatched, the first rotation of the storm kills the 0.29 supervisor."""
    with Uvicorn(uvicorn_run.family_venv("0.29.0"), str(tmp_path), mode="workers", env=OFF) as server:
        result = storm(server, 5, 1)
    assert not result["alive"]


# -- the README's logrotate stanza, with the real logrotate ---------------------------------------
README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def readme_stanza(marker="kill -USR1"):
    """The README's plain-uvicorn logrotate stanza that signals by pidfile."""
    text = open(README).read()
    section = text[text.index("## Plain uvicorn") :]
    blocks = section.split("```")[1::2]
    return next(b for b in blocks if marker in b and "{" in b).strip("\n") + "\n"


def logrotate_config(stanza, logs, pidfile):
    """The stanza with this test's paths in place of the README's."""
    head, body = stanza.split("{", 1)
    body = body.replace("/run/uvicorn.pid", pidfile)
    # no `create owner group` for users this machine may not have: logrotate copies the mode
    lines = [line for line in body.splitlines() if not line.strip().startswith("create ")]
    return " ".join('"{}"'.format(p) for p in logs) + " {" + "\n".join(lines) + "\n"


@pytest.mark.parametrize("patched", [True, False])
def test_readme_logrotate_stanza_end_to_end(patched, tmp_path):
    with Uvicorn(
        uvicorn_run.family_venv("0.54.0"), str(tmp_path), mode="workers", env=None if patched else OFF
    ) as server:
        pidfile = str(tmp_path / "uvicorn.pid")
        with open(pidfile, "w") as f:
            f.write("{}\n".format(server.main_pid))  # what the README's unit writes
        conf = str(tmp_path / "logrotate.conf")
        with open(conf, "w") as f:
            f.write(logrotate_config(readme_stanza(), [server.access_log, server.app_log], pidfile))
        os.chmod(conf, 0o644)
        os.chmod(str(tmp_path), 0o755)
        assert server.requests(10, "before") == 0
        run = subprocess.run(
            ["logrotate", "-f", "-s", str(tmp_path / "state"), conf],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            universal_newlines=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stdout
        rotated = server.access_log + ".1"
        assert os.path.exists(rotated), os.listdir(str(tmp_path))
        if patched:
            wait_for(server.reopened, REOPEN_DEADLINE, what="the reopen")
        else:
            deadline = time.monotonic() + CONTROL_DEADLINE
            wait_for(lambda: time.monotonic() > deadline or server.reopened(), CONTROL_DEADLINE + 1)
        assert server.requests(10, "after") == 0
        wait_for(
            lambda: (
                count_lines(server.app_log, "tag=after") + count_lines(server.app_log + ".1", "tag=after")
                == 10
            ),
            5,
        )
        assert count_lines(rotated, "tag=before") == 10
        if patched:
            assert (count_lines(server.access_log, "tag=after"), count_lines(rotated, "tag=after")) == (10, 0)
        else:
            assert (count_lines(server.access_log, "tag=after"), count_lines(rotated, "tag=after")) == (0, 10)


# -- the doctor --------------------------------------------------------------------------------------
UNPATCHED_PLAIN = {
    "0.14.0": ["server-dies", "supervisor-dies", "supervisor-dies"],
    "0.54.0": ["server-dies", "swallowed", "supervisor-dies"],
}


@pytest.mark.parametrize("release", sorted(UNPATCHED_PLAIN))
@pytest.mark.parametrize("patched", [True, False])
def test_doctor_says_what_plain_uvicorn_does(release, patched):
    env = dict(os.environ, **({} if patched else OFF))
    env.pop("PYTHONPATH", None)
    out = subprocess.run(
        [uvicorn_run.family_venv(release).python, "-m", "uvicorn_usr1_patch", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        universal_newlines=True,
        timeout=60,
    ).stdout
    parts = json.loads(out)["plain_uvicorn"]
    assert [p["unpatched"] for p in parts] == UNPATCHED_PLAIN[release]
    here = ["loop-safe", "relays", "relays"] if patched else UNPATCHED_PLAIN[release]
    assert [p["here"] for p in parts] == here


# -- an unknown shape: no patch, one warning, the program runs on -----------------------------------
FAKE_UVICORN = {
    "uvicorn/__init__.py": "",
    "uvicorn/server.py": "class Server(object):\n    def serve(self):\n        return 'sync'\n",
    "uvicorn/supervisors/__init__.py": "",
    "uvicorn/supervisors/multiprocess.py": "class Multiprocess(object):\n    pass\n",
    "uvicorn/supervisors/basereload.py": "BaseReload = None\n",
}
IMPORT_ALL = (
    "import sys, uvicorn.server, uvicorn.supervisors.multiprocess, uvicorn.supervisors.basereload\n"
    "assert uvicorn.server.Server().serve() == 'sync'\n"
    "sys.exit(3)\n"
)


def test_unknown_shapes_are_left_alone_with_one_warning_each(tmp_path):
    for name, text in FAKE_UVICORN.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.run(
        [uvicorn_run.family_venv("0.54.0").python, "-c", IMPORT_ALL],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr  # the program's own exit code
    warnings = [line for line in proc.stderr.splitlines() if "uvicorn-usr1-patch: skipped" in line]
    assert len(warnings) == 3, proc.stderr
    assert "uvicorn.server.Server: it has no `async def serve`" in warnings[0]
    assert "Multiprocess: it has neither handle_signals nor startup and run" in warnings[1]
    assert "uvicorn.supervisors.basereload: it defines neither Multiprocess nor BaseReload" in warnings[2]
    assert "Traceback" not in proc.stderr


# -- recognising a uvicorn main process from /proc (for `check --pid`) -------------------------------
@pytest.mark.parametrize("mode", ["single", "workers", "reload"])
@pytest.mark.parametrize("patched", [True, False])
def test_check_recognises_a_uvicorn_main_process(mode, patched, tmp_path):
    from uvicorn_usr1_patch.check_uvicorn import uvicorn_main

    env = None if patched else OFF
    with Uvicorn(uvicorn_run.family_venv("0.54.0"), str(tmp_path), mode=mode, env=env) as server:
        found = uvicorn_main(server.main_pid)
        workers = server.worker_pids()
        assert found is not None and found["mode"] == mode
        assert [c["pid"] for c in found["children"]] == workers
        # 0.54's supervisors catch USR1 unpatched too (the signal queue), the single server does not
        assert found["catches_usr1"] == (patched or mode == "workers")
        assert all(c["catches_usr1"] == patched for c in found["children"])
        assert all(uvicorn_main(pid) is None for pid in workers)  # a worker is no main process
    assert uvicorn_main(os.getpid()) is None  # pytest is no uvicorn


# -- uvicorn's own tests of the patched modules, with the package installed -------------------------
OWN_TESTS_RELEASE = "0.54.0"  # the 0.29.0 sdist ships no tests
OWN_TESTS_REQUIREMENTS = [
    "uvicorn[standard]==" + OWN_TESTS_RELEASE,
    # uvicorn's dev dependency group, as far as tests/test_server.py and tests/supervisors/ import
    "pytest",
    "pytest-mock==3.15.1",
    "trustme==1.2.1",
    "cryptography",
    "httpx2",
    "a2wsgi==1.10.10",
    "wsproto==1.3.2",
    "zttp",
]


def uvicorn_sdist_tree():
    """uvicorn's sdist (it holds tests/), fetched once with pip and unpacked in the cache."""
    import sys
    import tarfile

    from tools import make_patches

    tree = os.path.join(make_patches.CACHE, "sdist-tests", "uvicorn-" + OWN_TESTS_RELEASE)
    if not os.path.isdir(os.path.join(tree, "tests")):
        where = os.path.dirname(tree)
        os.makedirs(where, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", where]
            + ["uvicorn==" + OWN_TESTS_RELEASE],
            check=True,
            timeout=300,
        )
        with tarfile.open(os.path.join(where, "uvicorn-{}.tar.gz".format(OWN_TESTS_RELEASE))) as sdist:
            sdist.extractall(where, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return tree


def test_uvicorns_own_server_and_supervisor_tests_pass_with_the_package():
    from tools import venvs

    venv = venvs.ensure("3.12", OWN_TESTS_REQUIREMENTS)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    tree = uvicorn_sdist_tree()
    patched = subprocess.run(
        [
            venv.python,
            "-c",
            "import uvicorn.server as s; print(getattr(s.Server.serve, 'uvicorn_usr1_patch', 0))",
        ],
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        universal_newlines=True,
        timeout=60,
    )
    assert patched.stdout.strip() == "True"  # the tests below run against the patched Server
    run = subprocess.run(
        [venv.python, "-m", "pytest", "-o", "addopts=-rfEs", "-q", "-p", "no:cacheprovider"]
        + ["tests/test_server.py", "tests/supervisors"],
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        universal_newlines=True,
        timeout=600,
    )
    print(run.stdout[-600:])
    assert run.returncode == 0, run.stdout[-5000:]


def test_two_servers_on_one_loop_keep_usr1_until_both_are_done():
    probe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probes", "two_servers.py")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    out = subprocess.run(
        [uvicorn_run.family_venv("0.54.0").python, probe],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"both": "LoopReopen", "second_alone": "LoopReopen", "after_is_default": True}
