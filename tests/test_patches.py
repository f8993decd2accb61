"""The versioned diffs in patches/: complete, exact, reversible, refused twice, compiling, working.

The releases and their files come from PyPI through tools/make_patches.py (cached after the
first run). The behaviour tests run one release per distinct workers.py (tools/stacks.py
DIFF_STACKS) in a venv WITHOUT this package: the diff is applied to site-packages, and a
pristine venv of the same stack is the control that must show the bug.
"""

import ast
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile

import pytest

from tools import make_patches, venvs
from tools.gunicorn_run import Gunicorn, count_lines
from tools.stacks import DIFF_STACKS, PYTHONS, STACKS, uvicorn_release
from uvicorn_usr1_patch.releases import PASS, RESET, version_key

HERE = os.path.dirname(os.path.abspath(__file__))
DIFFS = sorted(glob.glob(os.path.join(make_patches.PATCHES, "uvicorn-*.diff")))
PROBE = os.path.join(HERE, "probes", "signal_probe.py")
REOPEN_DEADLINE = 5  # seconds for every worker to hold the new log files


def version_of(diff):
    return os.path.basename(diff)[len("uvicorn-") : -len(".diff")]


@pytest.fixture(scope="module")
def releases():
    return {r.version: r for r in make_patches.survey()}


# -- completeness and the generator ---------------------------------------------------------------
def test_one_diff_per_affected_release_on_pypi(releases):
    affected = {v for v, r in releases.items() if r.affected}
    assert {version_of(d) for d in DIFFS} == affected
    # the boundaries the survey must find, read from the files themselves
    assert "0.4.0" in affected and "0.18.3" in affected and "0.13.1" in affected
    assert not releases["0.3.32"].affected  # installs USR1 through the event loop
    assert not releases["0.19.0"].affected  # installs handle_usr1 itself
    assert len({r.workers_file for r in releases.values() if r.affected}) == len(make_patches.WORKERS_FILES)


def test_an_unknown_workers_file_stops_the_tool(releases, monkeypatch):
    python = venvs.ensure(*make_patches.DOWNLOADER, with_patch=False).python
    monkeypatch.setattr(make_patches, "WORKERS_FILES", {})
    with pytest.raises(make_patches.UnknownWorkersFile, match="0.13.1: workers.py sha256"):
        make_patches.examine("0.13.1", python)


def test_generator_reproduces_the_committed_diffs():
    proc = subprocess.run(
        [sys.executable, os.path.join(make_patches.REPO, "tools", "make_patches.py"), "--check"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        universal_newlines=True,
    )
    assert proc.returncode == 0, proc.stdout
    assert "patches/ is up to date" in proc.stdout


def test_each_diff_has_the_header_patch_ignores(releases):
    for diff in DIFFS:
        release = releases[version_of(diff)]
        with open(diff) as f:
            text = f.read()
        header = text[: text.index("\n--- a/uvicorn/workers.py\n+++ b/uvicorn/workers.py\n")]
        assert "uvicorn {}".format(release.version) in header
        assert "sha256 {}".format(release.sha256) in header
        assert 'patch -d "$site" -p1 -R < "$PWD/uvicorn-{}.diff"'.format(release.version) in header
        assert 'patch -d "$site" -p1 --forward < "$PWD/uvicorn-{}.diff"'.format(release.version) in header
        # nothing in the header that patch could take for a diff of its own
        assert not any(
            line.startswith(("---", "+++", "***", "@@", "Index:", "diff ")) for line in header.splitlines()
        )


# -- one source of truth: the code each diff adds is the package's --------------------------------
PACKAGE = os.path.join(make_patches.REPO, "uvicorn_usr1_patch")
CARRIED = ("atomic_reopen", "loop_reopen", "worker_usr1")  # in this order: each uses those before it
MARKER = re.compile(r"# (BEGIN|END) uvicorn-usr1-patch carried code: ([\w ]+)\n$")
# Everything else a diff may add: the imports the carried code needs, what the package's wrappers
# do (install_worker_usr1 after the release's init_signals; the safe point at callback_notify; the
# Server kept as self.server; gunicorn's Logger patched when the master imports uvicorn.workers),
# comments and blank lines.
GLUE = {"import {}\n".format(m) for m in ("errno", "logging", "os", "signal", "sys")}
GLUE |= {"from gunicorn.glogging import Logger\n", "Logger.reopen_files = reopen_log_files\n"}
GLUE |= {"        install_worker_usr1(self)\n", "        self.usr1_reopen.safe_point()\n"}
GLUE |= {"        self.server = server\n", "\n"}
CALLS = ["        install_worker_usr1(self)\n", "        self.usr1_reopen.safe_point()\n"]
CALLS += ["Logger.reopen_files = reopen_log_files\n"]
MAX_ADDED = 150  # lines: what a reviewer can read (issue 15)


def code_of(text):
    """The code of `text` as Python sees it, docstrings aside: comments, blank lines and line
    breaks are not in it, every name, string and operator is (the diffs hold the package's code
    without comment-only lines, docstrings and most blank lines: make_patches.for_the_diff)."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def package_blocks():
    """{name: the lines strictly between the markers} of the package's own modules."""
    blocks = {}
    for name in CARRIED:
        with open(os.path.join(PACKAGE, name + ".py")) as f:
            lines = f.readlines()
        marks = [i for i, line in enumerate(lines) if MARKER.match(line)]
        assert [MARKER.match(lines[i]).groups() for i in marks] == [("BEGIN", name), ("END", name)]
        blocks[name] = "".join(lines[marks[0] + 1 : marks[1]])
    return blocks


def package_code():
    return code_of("".join(package_blocks()[name] for name in CARRIED))


def diff_changes(text):
    """(added lines, removed lines) of a one-file unified diff, without the +/- signs."""
    body = text[text.index("\n--- a/") + 1 :].splitlines(True)[2:]
    added = [line[1:] for line in body if line.startswith("+")]
    removed = [line[1:] for line in body if line.startswith("-")]
    return added, removed


def split_carried(added):
    """The added lines -> (the names on the markers, the lines between them, the lines outside)."""
    marks = [i for i, line in enumerate(added) if MARKER.match(line)]
    assert [MARKER.match(added[i]).group(1) for i in marks] == ["BEGIN", "END"], marks
    names = MARKER.match(added[marks[0]]).group(2)
    assert MARKER.match(added[marks[1]]).group(2) == names
    return names.split(), "".join(added[marks[0] + 1 : marks[1]]), added[: marks[0]] + added[marks[1] + 1 :]


def carried_problems(diff_text, family, expected):
    """What in a diff is not the package's carried code or the known glue (empty: none)."""
    added, removed = diff_changes(diff_text)
    names, carried, outside = split_carried(added)
    problems = []
    if names != list(CARRIED):
        problems.append("carried blocks {} instead of {}".format(names, list(CARRIED)))
    if code_of(carried) != expected:
        problems.append("the carried code is not the package's")
    code = [line for line in outside if not line.lstrip().startswith("#")]
    code = [line.split("  #")[0].rstrip() + "\n" if "  #" in line else line for line in code]
    problems += ["added outside the blocks: {!r}".format(line) for line in code if line not in GLUE]
    for call in CALLS:
        if code.count(call) != 1:
            problems.append("{!r} added {} times".format(call.strip(), code.count(call)))
    if len(added) > MAX_ADDED:
        problems.append("{} lines added (at most {})".format(len(added), MAX_ADDED))
    # the release's own code stays: only a `pass` init_signals loses its `pass`
    if removed != {PASS: ["        pass\n"], RESET: []}[family]:
        problems.append("removed: {!r}".format(removed))
    return problems


def test_each_diff_adds_the_package_code_and_at_most_150_lines(releases):
    expected = package_code()
    for diff in DIFFS:
        with open(diff) as f:
            text = f.read()
        assert carried_problems(text, releases[version_of(diff)].workers_file.family, expected) == [], diff


def test_a_diverging_diff_fails_the_comparison(releases):
    """The control of the test above: one token changed, one line added, the package changed,
    the carried code grown past the limit."""
    expected = package_code()
    with open(os.path.join(make_patches.PATCHES, "uvicorn-0.13.1.diff")) as f:
        text = f.read()
    family = releases["0.13.1"].workers_file.family
    assert carried_problems(text, family, expected) == []

    line = "+    signal.signal(signal.SIGUSR1, worker.usr1_reopen)\n"
    assert text.count(line) == 1
    changed = text.replace(line, line.replace("SIGUSR1", "SIGUSR2"))
    assert carried_problems(changed, family, expected) == ["the carried code is not the package's"]

    glue = "+Logger.reopen_files = reopen_log_files"
    assert text.count(glue) == 1
    extra = text.replace(glue, "+import asyncio\n" + glue)
    assert carried_problems(extra, family, expected) == ["added outside the blocks: 'import asyncio\\n'"]

    package_changed = code_of("".join(package_blocks()[n] for n in CARRIED) + "x = 1\n")
    assert carried_problems(text, family, package_changed) == ["the carried code is not the package's"]

    added, _ = diff_changes(text)
    longer = text.replace(glue, "+# a comment\n" * (MAX_ADDED - len(added) + 1) + glue)
    assert carried_problems(longer, family, expected) == [
        "{} lines added (at most 150)".format(MAX_ADDED + 1)
    ]


# -- applying ---------------------------------------------------------------------------------
def unpack(archive, into):
    """Unpack a wheel (its root holds uvicorn/) or an sdist (uvicorn-X/ holds it); the root."""
    if archive.endswith(".whl"):
        with zipfile.ZipFile(archive) as z:
            z.extractall(into)
        return into
    with tarfile.open(archive) as t:
        t.extractall(into)
    (top,) = os.listdir(into)
    return os.path.join(into, top)


def run_patch(root, diff, *options):
    """GNU patch -p1 at `root`, stdin the diff, no terminal to ask questions on."""
    with open(diff) as f:
        return subprocess.run(
            ["patch", "-p1"] + list(options),
            cwd=root,
            stdin=f,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            universal_newlines=True,
            start_new_session=True,
        )


def sha256_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.parametrize("diff", DIFFS, ids=version_of)
def test_diff_applies_exactly_reverses_and_is_refused_twice(diff, releases, tmp_path):
    release = releases[version_of(diff)]
    expected = hashlib.sha256(make_patches.patched_source(release).encode()).hexdigest()
    archives = [a for a in (release.wheel, release.sdist) if a]
    assert release.sdist, "every affected release has an sdist on PyPI"
    for archive in archives:
        root = unpack(archive, str(tmp_path / os.path.basename(archive)))
        workers = os.path.join(root, "uvicorn", "workers.py")
        assert sha256_of(workers) == release.sha256

        applied = run_patch(root, diff, "--fuzz=0")
        assert applied.returncode == 0, applied.stdout
        assert applied.stdout == "patching file uvicorn/workers.py\n"  # no offset, no fuzz
        assert sha256_of(workers) == expected

        for options in ((), ("--forward",)):
            again = run_patch(root, diff, *options)
            assert again.returncode == 1, again.stdout
            assert "Reversed (or previously applied) patch detected" in again.stdout
            assert sha256_of(workers) == expected, "a second application changed the file"
            os.remove(workers + ".rej")

        reverted = run_patch(root, diff, "-R", "--fuzz=0")
        assert reverted.returncode == 0, reverted.stdout
        assert reverted.stdout == "patching file uvicorn/workers.py\n"
        assert sha256_of(workers) == release.sha256
        assert not [n for n in os.listdir(os.path.dirname(workers)) if n.endswith((".orig", ".rej"))]


def compiles_on(release, minor):
    """The Pythons a release declares, and the newer ones people run it on anyway."""
    return minor in release.pythons or version_key(minor) > max(version_key(p) for p in release.pythons)


@pytest.mark.parametrize("minor", PYTHONS)
def test_patched_files_compile_on_the_pythons_each_release_supports(minor, releases, tmp_path):
    chosen = [r for r in releases.values() if r.affected and compiles_on(r, minor)]
    assert chosen
    paths = []
    for release in chosen:
        path = str(tmp_path / "workers-{}.py".format(release.version))
        with open(path, "w") as f:
            f.write(make_patches.patched_source(release))
        paths.append(path)
    code = (
        "import sys\nfor p in sys.argv[1:]:\n    compile(open(p).read(), p, 'exec')\nprint(len(sys.argv) - 1)"
    )
    out = subprocess.check_output([venvs.require_python(minor), "-c", code] + paths, universal_newlines=True)
    assert out.strip() == str(len(chosen))


def test_every_diff_is_compiled_by_some_python(releases):
    available = set(PYTHONS)
    for release in releases.values():
        if release.affected:
            assert available & set(release.pythons), release.version


# -- the diff subcommand ---------------------------------------------------------------------------
def test_wheel_ships_every_diff():
    with zipfile.ZipFile(venvs.wheel()) as z:
        shipped = sorted(n for n in z.namelist() if n.startswith("uvicorn_usr1_patch/patches/"))
    assert shipped == ["uvicorn_usr1_patch/patches/" + os.path.basename(d) for d in DIFFS]


@pytest.mark.parametrize("name", ["uvicorn-0.13.1", "uvicorn-0.54.0"])
def test_diff_subcommand_prints_the_installed_release_diff(name):
    stack = STACKS[name]
    version = uvicorn_release(stack)
    venv = venvs.ensure(stack.python, stack.requirements)
    proc = subprocess.run(
        [venv.python, "-m", "uvicorn_usr1_patch", "diff"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
    )
    diff = os.path.join(make_patches.PATCHES, "uvicorn-{}.diff".format(version))
    if os.path.exists(diff):
        with open(diff) as f:
            assert proc.stdout == f.read()
        assert (proc.returncode, proc.stderr) == (0, "")
    else:
        assert proc.returncode == 1
        assert proc.stdout == ""
        assert proc.stderr.startswith("no diff for uvicorn {}: it handles SIGUSR1 itself".format(version))


def test_diff_subcommand_refuses_an_unknown_release(monkeypatch, capsys):
    from uvicorn_usr1_patch import diffs

    monkeypatch.setattr(diffs, "installed_uvicorn", lambda: ("0.4.99", None))
    assert diffs.main([]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == "no diff for uvicorn 0.4.99: this release is unknown to uvicorn-usr1-patch\n"


# -- behaviour, one release per workers.py --------------------------------------------------------
FILE_NAMES = list(DIFF_STACKS)


def test_every_workers_file_has_a_stack():
    assert sorted(DIFF_STACKS) == sorted(f.name for f in make_patches.WORKERS_FILES.values())


def requirements(name):
    return DIFF_STACKS[name].requirements


def pristine_venv(name):
    return venvs.ensure(DIFF_STACKS[name].python, requirements(name), with_patch=False)


def diffed_venv(name):
    """A venv of the same stack (never the package) whose uvicorn has the diff applied.

    Its own directory, so the pristine control venv stays pristine; built once per diff.
    """
    version, minor = uvicorn_release(DIFF_STACKS[name]), DIFF_STACKS[name].python
    diff = os.path.join(make_patches.PATCHES, "uvicorn-{}.diff".format(version))
    interpreter = venvs.require_python(minor)
    key = hashlib.sha256(json.dumps([interpreter, sorted(requirements(name)), sha256_of(diff)]).encode())
    venv = venvs.Venv(
        os.path.join(venvs.VENVS, "diffed-uvicorn{}-py{}-{}".format(version, minor, key.hexdigest()[:12]))
    )
    with venvs._locked(venv.path):
        venvs._populate(venv, interpreter, requirements(name), with_patch=False)
        marker = os.path.join(venv.path, ".diff-applied")
        if not os.path.exists(marker):
            # where the README says to run patch: the directory holding uvicorn/
            code = "import os, uvicorn; print(os.path.dirname(os.path.dirname(uvicorn.__file__)))"
            applied = run_patch(run_in(venv, "-c", code).strip(), diff, "--fuzz=0")
            assert applied.returncode == 0, applied.stdout
            open(marker, "w").close()
    return venv


def workers_sha(venv):
    return sha256_of(os.path.join(venv.site_packages(), "uvicorn", "workers.py"))


def release_of(releases, name):
    return releases[uvicorn_release(DIFF_STACKS[name])]


def run_in(venv, *args):
    """The venv's python, away from this checkout (cwd, PYTHONPATH) so only the venv counts."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return subprocess.check_output(
        [venv.python] + list(args), universal_newlines=True, stderr=subprocess.STDOUT, cwd="/", env=env
    )


def probe(venv):
    out = run_in(venv, PROBE, "uvicorn.workers.UvicornWorker")
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("name", FILE_NAMES)
def test_diffed_worker_defers_and_coalesces_usr1(name, releases):
    release = release_of(releases, name)
    assert release.workers_file.name == name
    assert release.workers_file.family == DIFF_STACKS[name].family
    pristine, diffed = pristine_venv(name), diffed_venv(name)
    assert workers_sha(pristine) == release.sha256
    assert workers_sha(diffed) == hashlib.sha256(make_patches.patched_source(release).encode()).hexdigest()
    for venv in (pristine, diffed):
        code = "import importlib.util as u; print(u.find_spec('uvicorn_usr1_patch') is None)"
        has_package = run_in(venv, "-c", code)
        assert has_package.strip() == "True", "this package must not be in " + venv.path

    control = probe(pristine)
    # the release's own behaviour: master's handler kept (0.4-0.13.2) or default = death (0.13.3+)
    assert control["usr1"] == release.workers_file.family, control

    output = run_in(diffed, PROBE, "uvicorn.workers.UvicornWorker")
    report = json.loads(output.strip().splitlines()[-1])
    assert report["usr1"] == "deferred", report
    assert report["calls_without_loop"] == 0, report  # never inside the signal handler, even at boot
    assert report["calls_at_first_tick"] == 1, report  # remembered, done once the loop runs
    assert report["calls_during_burst"] == 0, report  # never inside the handler
    assert report["calls_after_burst"] == 1, report  # five signals, one reopen
    assert report["calls_after_next"] == 2, report
    assert report["calls_after_loop_ended"] == 2, report  # the worker is exiting: dropped...
    assert "SIGUSR1 after the loop ended: dropped" in output  # ...with a line saying so
    # SIGUSR1 and nothing else: every other signal as the release leaves it (the package's
    # other fixes, worker_signals.py, are not in the diffs)
    others = {k: v for k, v in report["signals"].items() if k != "SIGUSR1"}
    assert others == {k: v for k, v in control["signals"].items() if k != "SIGUSR1"}, report


# gunicorn's master imports uvicorn.workers before it forks: the diffed module makes the master's
# own Logger.reopen_files atomic, as the package's hook does. A new log path that cannot be opened
# (a directory there): pristine gunicorn closes the old file first and raises (in the master: the
# arbiter's "Unhandled exception in main loop"), and the next line raises into its caller (in a
# worker: the request) as FileHandler.emit retries the open.
MASTER_REOPEN = """
import json, os, sys, tempfile
import uvicorn.workers
from gunicorn.config import Config
from gunicorn.glogging import Logger
path = os.path.join(tempfile.mkdtemp(), "access.log")
cfg = Config()
cfg.set("accesslog", path)
log = Logger(cfg)
log.access_log.info("before")
os.rename(path, path + ".1")
os.mkdir(path)
def attempt(action):
    try:
        action()
        return "done"
    except OSError as exc:
        return type(exc).__name__
report = {"reopen": attempt(log.reopen_files)}
report["next_line"] = attempt(lambda: log.access_log.info("after"))
with open(path + ".1") as f:
    report["lines_in_old_file"] = f.read().split()
print(json.dumps(report))
"""


@pytest.mark.parametrize("name", FILE_NAMES)
def test_diffed_module_makes_gunicorns_own_reopen_atomic(name):
    pristine = json.loads(run_in(pristine_venv(name), "-c", MASTER_REOPEN).strip().splitlines()[-1])
    assert pristine == {
        "reopen": "IsADirectoryError",
        "next_line": "IsADirectoryError",
        "lines_in_old_file": ["before"],
    }

    output = run_in(diffed_venv(name), "-c", MASTER_REOPEN)
    diffed = json.loads(output.strip().splitlines()[-1])
    # nothing raised, the old file kept and written to, one line saying why
    assert diffed == {"reopen": "done", "next_line": "done", "lines_in_old_file": ["before", "after"]}
    assert output.count("uvicorn-usr1-patch: cannot reopen ") == 1 and "(EISDIR)" in output, output


def request_logs(server, release):
    """The logs the release writes a line per request to: the app's, and access.log from 0.10.0
    (before, uvicorn logged requests through gunicorn's error log)."""
    if version_key(release.version) < (0, 10, 0):
        return [server.app_log]
    return [server.app_log, server.access_log]


@pytest.mark.e2e
@pytest.mark.parametrize("name", FILE_NAMES)
def test_diffed_release_reopens_on_rotation_where_pristine_fails(name, releases, tmp_path):
    release = release_of(releases, name)
    family = release.workers_file.family

    with Gunicorn(pristine_venv(name), str(tmp_path / "pristine")) as server:
        before, after = server.rotation_round(REOPEN_DEADLINE)
        if family == PASS:  # USR1 ignored: every new line goes on into the rotated file
            for log in request_logs(server, release):
                assert count_lines(log, "tag=after") == 0, log
                assert count_lines(log + ".1", "tag=after") == 10, log
            assert after == before
        else:  # USR1 kills the workers: gunicorn boots new ones
            assert family == RESET
            assert not set(before) & set(after), "the workers survived USR1"

    with Gunicorn(diffed_venv(name), str(tmp_path / "diffed")) as server:
        before, after = server.rotation_round(REOPEN_DEADLINE)
        logs = request_logs(server, release)
        for log in logs:
            assert count_lines(log, "tag=after") == 10, log
            assert count_lines(log, "tag=before") == 0, log
            assert count_lines(log + ".1", "tag=before") == 10, log
            assert count_lines(log + ".1", "tag=after") == 0, log
        assert after == before, "workers were restarted"
        assert "Logging error" not in server.output()
        with open(server.error_log) as f:
            assert sum("Booting worker" in line for line in f) == 2
