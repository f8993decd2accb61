"""Generate patches/uvicorn-X.Y.Z.diff for every uvicorn release on PyPI whose worker ignores SIGUSR1.

    python tools/make_patches.py            # (re)write patches/
    python tools/make_patches.py --check    # regenerate into a temp dir, compare byte for byte
    python tools/make_patches.py --list     # one line per examined release

The releases come from PyPI (`pip index versions uvicorn`); each one is fetched with
`pip download --no-deps` (the wheel, and the sdist of every affected release), cached under
~/.cache/uvicorn-usr1-patch/pypi, and its uvicorn/workers.py read. A release is affected when
its workers.py has a UvicornWorker and never mentions SIGUSR1 (0.2.x-0.3.x handle it through
the loop, 0.19.0 on with signal.signal, 0.0.x-0.1.x have no worker). Each affected workers.py
is identified by sha256 in WORKERS_FILES; a file not in that table stops the tool: a new file
needs reading before it gets a diff.

The code each diff adds is the package's own: the blocks between the "carried code" markers
of uvicorn_usr1_patch/atomic_reopen.py, loop_reopen.py and worker_usr1.py, without their
comment-only lines, docstrings and most blank lines (for_the_diff: at most 150 added lines),
plus what the package's wrappers do: install_worker_usr1(self) after the release's
init_signals, usr1_reopen.safe_point() in callback_notify, `self.server = server` where run()
makes uvicorn's Server (0.4.0-0.4.5 keep it there themselves), and gunicorn's
Logger.reopen_files replaced at import. SIGUSR1 only: the package's other signal fixes
(worker_signals.py) are not in the diffs. A change to those blocks makes --check (and
tests/test_patches.py) fail until the diffs are regenerated.

pip runs from a Python 3.8 venv with setuptools 56 (and hatchling for 0.18's sdists):
fetching an sdist makes pip prepare its metadata, and today's setuptools rejects the
extras_require of old uvicorn setup.py files.
"""

import argparse
import ast
import collections
import concurrent.futures
import difflib
import filecmp
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tools import venvs  # noqa: E402
from uvicorn_usr1_patch.releases import PASS, RESET, version_key  # noqa: E402

PATCHES = os.path.join(REPO, "patches")
CACHE = os.environ.get(
    "UVICORN_USR1_PATCH_PYPI_CACHE", os.path.expanduser("~/.cache/uvicorn-usr1-patch/pypi")
)
DOWNLOADER = ("3.8", ["pip==23.0.1", "setuptools==56.0.0", "hatchling==1.18.0"])
WORKERS = "uvicorn/workers.py"
NONE = "none"  # cache marker: PyPI has no such file for this release
UNINSTALLABLE = "uninstallable"  # cache marker: pip cannot prepare this sdist's metadata

# family (uvicorn_usr1_patch/releases.py): PASS (0.4.0-0.13.2, init_signals is `pass`: USR1 and every
# other master handler stay inherited) or RESET (0.13.3-0.18.3, Worker.SIGNALS reset to SIG_DFL: USR1
# kills the worker).
WorkersFile = collections.namedtuple("WorkersFile", "name family")

# sha256 of uvicorn/workers.py (each release's wheel and sdist copies are identical) -> the file,
# named after the releases sharing the file (0.6.1, 0.9.1... differ from their neighbours).
# (name, what init_signals does)
WORKERS_FILES = {
    "f6e2550718f6cdd57b6d505ca22c5aac9c06d6583ba03b93a720d927e1a465da": WorkersFile("0.4.0-0.4.2", PASS),
    "af3601de183c19ea725f725c2a2c031de70b55bb57efe49dda4e5ecb3431292a": WorkersFile("0.4.3", PASS),
    "66630013842c565716b7a23523b88c85a8920e4c845893fb4068ed8618f1da85": WorkersFile("0.4.4-0.4.5", PASS),
    "922901fd8504beaaaec287a9dc634ddef8b94570661a131feca9bbcfdd583981": WorkersFile("0.4.6", PASS),
    "23c9c4c687f3ea092db2518f3b3d799559467ed133d5f8b04c979e03ac8b1e54": WorkersFile("0.5.0-0.9.0", PASS),
    "11d72b689985196a156c28b4d78cf29aa26b57292f2e0363288bd0a8a98a8559": WorkersFile("0.6.1", PASS),
    "a12e6ebd5c19792c6a0742afb2d9f8a0782944930a9bd3c8c21ab35276145914": WorkersFile("0.9.1", PASS),
    "5967477a2160506ac7eafaeef7b43a40459e229d37f4c62cb230f44ca9c7c21f": WorkersFile("0.10.0-0.11.1", PASS),
    "b60a2701caa0163fde14eb3c819857a16608504c14c8e13a9ba581ddc96fcd54": WorkersFile("0.10.9", PASS),
    "a309fcfd22c8d50d4c0d5f475b95d31b4b0069dec476007e0ab5b5c4e0e9bf5c": WorkersFile("0.11.2-0.11.3", PASS),
    "cd39cf13613ac48c68788be7b76af27a08253d500e05f1f823d3e12195abaa86": WorkersFile("0.11.4", PASS),
    "14a6f94e6e0ba670bad15a0e168fcd84665c513f9f8c1be9a83c089a82113b1b": WorkersFile("0.11.5-0.12.1", PASS),
    "cc1ea8edc2791419f3da4d7d43f5a3c2c32447ec4e7e90722e7328441448ef8a": WorkersFile("0.12.2-0.13.2", PASS),
    "902567d0d7083021878e772e9626c2d5468c07b38f86e4217aec0d763d1eedfa": WorkersFile("0.13.3-0.13.4", RESET),
    "258e50f606ed467da34ee3d1cbdcd8c3f2e7a51dee2f1a6a95b67efe3013c1c1": WorkersFile("0.14.0", RESET),
    "fd053c4564231f732adc3db12ea43a26b3e0fc7c4f1615e0d9347e26f5336869": WorkersFile("0.15.0-0.16.0", RESET),
    "83c0067a89d4975c4c9e35e1c4b4367fb6c6d4b2df029144ed084a11af5060d9": WorkersFile(
        "0.17.0.post1-0.18.3", RESET
    ),
}


class UnknownWorkersFile(Exception):
    pass


# -- PyPI ------------------------------------------------------------------------------------
def pypi_versions():
    """Every uvicorn release on PyPI, oldest first."""
    out = subprocess.check_output(
        [sys.executable, "-m", "pip", "index", "versions", "uvicorn"],
        stderr=subprocess.DEVNULL,
        universal_newlines=True,
    )
    found = re.search(r"^Available versions: (.*)$", out, re.M)
    if not found:
        raise RuntimeError("cannot read `pip index versions uvicorn`:\n" + out)
    return sorted(found.group(1).split(", "), key=version_key)


def _download(python, version, kind):
    """Path of the cached wheel or sdist of `version`, or None when PyPI has none."""
    where = os.path.join(CACHE, version, kind)
    marker = os.path.join(where, NONE)
    if os.path.exists(marker) or os.path.exists(os.path.join(where, UNINSTALLABLE)):
        return None
    found = [f for f in glob.glob(os.path.join(where, "uvicorn-*")) if not f.endswith(".tmp")]
    if found:
        return found[0]
    tmp = tempfile.mkdtemp(prefix="dl-", dir=os.path.join(CACHE))
    try:
        only = (
            ["--only-binary", ":all:"]
            if kind == "wheel"
            else ["--no-binary", ":all:", "--no-build-isolation"]
        )
        proc = subprocess.run(
            [python, "-m", "pip", "download", "-q", "--no-deps", "--ignore-requires-python", "-d", tmp]
            + only
            + ["uvicorn=={}".format(version)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            universal_newlines=True,
        )
        files = os.listdir(tmp)
        os.makedirs(where, exist_ok=True)
        if proc.returncode == 0 and len(files) == 1:
            os.rename(os.path.join(tmp, files[0]), os.path.join(where, files[0]))
            return os.path.join(where, files[0])
        if "No matching distribution found" in proc.stdout:
            open(marker, "w").close()
            return None
        if kind == "sdist" and "metadata-generation-failed" in proc.stdout:
            # A broken setup.py (some 0.2.x sdists lack their README): pip cannot install
            # this release at all, so no environment runs it.
            with open(os.path.join(where, UNINSTALLABLE), "w") as f:
                f.write(proc.stdout)
            return None
        raise RuntimeError("pip download uvicorn=={} ({}) failed:\n{}".format(version, kind, proc.stdout))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_member(archive, suffix):
    """The bytes of the member of a wheel or sdist whose path ends with `suffix`, or None."""
    if archive.endswith(".whl") or archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if n == suffix or n.endswith("/" + suffix)]
            return z.read(min(names, key=len)) if names else None
    with tarfile.open(archive) as t:
        members = [m for m in t.getmembers() if m.name.endswith("/" + suffix) and m.isfile()]
        if not members:
            return None
        return t.extractfile(min(members, key=lambda m: len(m.name))).read()


def metadata_text(archive):
    if archive.endswith(".whl"):
        with zipfile.ZipFile(archive) as z:
            name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            return z.read(name).decode("utf-8", "replace")
    return (read_member(archive, "PKG-INFO") or b"").decode("utf-8", "replace")


def supported_pythons(archive):
    """['3.6', '3.7', ...]: the Python 3.x classifiers the release declares."""
    found = re.findall(r"Programming Language :: Python :: (3\.\d+)\s*$", metadata_text(archive), re.M)
    return sorted(set(found), key=version_key)


Release = collections.namedtuple(
    "Release", "version wheel sdist workers sha256 affected workers_file pythons sdist_workers"
)


def is_affected(source):
    """A workers.py whose UvicornWorker never handles SIGUSR1.

    0.2.x-0.3.x install USR1 through loop.add_signal_handler; 0.19.0 on call handle_usr1
    from signal.signal; releases before 0.2 have no workers.py at all.
    """
    if source is None or b"class UvicornWorker(Worker)" not in source:
        return False
    return b"SIGUSR1" not in source


def examine(version, python):
    wheel = _download(python, version, "wheel")
    sdist = None
    archive = wheel
    if archive is None:
        sdist = archive = _download(python, version, "sdist")
    if archive is None:
        if os.path.exists(os.path.join(CACHE, version, "sdist", UNINSTALLABLE)):
            return Release(version, None, None, None, None, False, None, [], None)
        raise RuntimeError("PyPI has neither a wheel nor an sdist of uvicorn " + version)
    source = read_member(archive, WORKERS)
    affected = is_affected(source)
    if affected and sdist is None:
        sdist = _download(python, version, "sdist")
    sdist_workers = read_member(sdist, WORKERS) if sdist else None
    sha = hashlib.sha256(source).hexdigest() if source is not None else None
    workers_file = None
    if affected:
        workers_file = WORKERS_FILES.get(sha)
        if workers_file is None:
            raise UnknownWorkersFile(
                "uvicorn {}: workers.py sha256 {} is in no WORKERS_FILES of tools/make_patches.py; "
                "read it and add it there".format(version, sha)
            )
        if sdist_workers is not None and sdist_workers != source:
            raise UnknownWorkersFile(
                "uvicorn {}: the sdist's workers.py differs from the wheel's".format(version)
            )
    return Release(
        version, wheel, sdist, source, sha, affected, workers_file, supported_pythons(archive), sdist_workers
    )


def survey(jobs=4):
    """Every uvicorn release on PyPI, examined (downloads once, then reads the cache)."""
    os.makedirs(CACHE, exist_ok=True)
    python = venvs.ensure(DOWNLOADER[0], DOWNLOADER[1], with_patch=False).python
    versions = pypi_versions()
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(lambda v: examine(v, python), versions))


# -- the transformation -------------------------------------------------------------------------
# The handler code is the package's own: the block between these markers in each module, carried
# into workers.py (for_the_diff) between one pair of markers, in the order of the package's imports
# (each uses the names of those before it). One source of truth: tests/test_patches.py compares
# the code (its syntax tree, docstrings aside) with the package's.
CARRIED = ("atomic_reopen", "loop_reopen", "worker_usr1")
BEGIN = "# BEGIN uvicorn-usr1-patch carried code: {}\n"
END = "# END uvicorn-usr1-patch carried code: {}\n"
PACKAGE = os.path.join(REPO, "uvicorn_usr1_patch")

# What the carried code needs besides its own names.
STDLIB = ("errno", "logging", "os", "signal", "sys")
LOGGER = "from gunicorn.glogging import Logger\n"
WORKER_IMPORT = "from gunicorn.workers.base import Worker\n"
# The package's hook does this when the master imports uvicorn.workers (before it forks).
PATCH_LOGGER = """\
Logger.reopen_files = reopen_log_files  # in gunicorn's master too: it imports this module before forking
"""
# The package's wrapper runs the release's own init_signals, then this.
INSTALL = "        install_worker_usr1(self)\n"
# The package's serve wrapper sets worker.server, which the hand-over stops (0.4.6 onwards make
# the Server in a local variable; 0.4.0-0.4.5 keep it as self.server themselves).
MAKE_SERVER = "        server = Server(config=self.config)\n"
KEEP_SERVER = "        self.server = server\n"
# The package's wrapper of worker.notify: uvicorn's callback_notify is the first safe point.
NOTIFY = "        self.notify()\n"
SAFE_POINT = "        self.usr1_reopen.safe_point()\n"


def carried_block(name):
    """The text of uvicorn_usr1_patch/NAME.py from its BEGIN marker line to its END marker line."""
    with open(os.path.join(PACKAGE, name + ".py")) as f:
        text = f.read()
    begin, end = BEGIN.format(name), END.format(name)
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ValueError("uvicorn_usr1_patch/{}.py: expected one BEGIN and one END marker".format(name))
    return text[text.index(begin) : text.index(end) + len(end)]


def for_the_diff(block):
    """A carried block as the diffs hold it: the package's code, token for token, without its
    comment-only lines, docstrings and blank lines but one before each top-level definition
    (the diff's header says what the code does, the package's modules say why at length).
    tests/test_patches.py compares the tokens, comments, docstrings and blank lines aside."""
    lines = block.splitlines(True)
    drop = {i for i, line in enumerate(lines) if not line.strip() or COMMENT_ONLY.match(line)}
    tree = ast.parse(block)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                drop.update(range(body[0].lineno - 1, body[0].end_lineno))
    starts = {node.lineno - 1 for node in tree.body[1:]}
    return "".join(
        ("\n" if i in starts else "") + line
        for i, line in enumerate(lines)
        if i not in drop or MARKER.match(line)
    )


COMMENT_ONLY = re.compile(r"\s*#")
MARKER = re.compile(r"# (BEGIN|END) uvicorn-usr1-patch carried code: [\w ]+\n$")


def carried_code():
    """The carried blocks, in the order of CARRIED, between one BEGIN and one END marker."""
    bodies = ["".join(for_the_diff(carried_block(name)).splitlines(True)[1:-1]) for name in CARRIED]
    names = " ".join(CARRIED)
    return BEGIN.format(names) + "\n".join(bodies) + END.format(names)


def _replace_once(text, old, new, what):
    if text.count(old) != 1:
        raise UnknownWorkersFile("expected exactly one {!r} ({})".format(old, what))
    return text.replace(old, new)


def _add_stdlib_imports(lines, names):
    """Insert `import name` lines in the leading block of stdlib imports (or start one)."""
    known = ("asyncio", "typing") + STDLIB
    block = 0
    while block < len(lines) and re.match(r"import ({})\n$".format("|".join(known)), lines[block]):
        block += 1
    present = {line.split()[1] for line in lines[:block]}
    wanted = sorted(present | set(names))
    new = ["import {}\n".format(n) for n in wanted]
    if block == 0:
        new.append("\n")
    return new + lines[block:]


def transform(source, workers_file):
    """Pristine workers.py text -> patched text, for a release with `workers_file`."""
    text = "".join(_add_stdlib_imports(source.splitlines(True), STDLIB))
    text = _replace_once(text, WORKER_IMPORT, LOGGER + WORKER_IMPORT, "gunicorn's Worker import")
    added = carried_code() + PATCH_LOGGER + "\n"
    text = _replace_once(
        text, "class UvicornWorker(Worker):\n", added + "class UvicornWorker(Worker):\n", "class"
    )
    if workers_file.family == PASS:
        signature = "    def init_signals(self):\n"
        text = _replace_once(text, signature + "        pass\n", signature + INSTALL, "init_signals")
    elif workers_file.family == RESET:
        loop = "        for s in self.SIGNALS:\n            signal.signal(s, signal.SIG_DFL)\n"
        text = _replace_once(text, loop, loop + INSTALL, "init_signals' reset loop")
    else:
        raise ValueError(workers_file.family)
    notify = "    async def callback_notify(self):\n"
    if notify not in text:
        notify = "    async def callback_notify(self) -> None:\n"
    text = _replace_once(text, notify + NOTIFY, notify + SAFE_POINT + NOTIFY, "callback_notify")
    if "        self.server = Server(config=self.config)\n" not in text:
        text = _replace_once(text, MAKE_SERVER, MAKE_SERVER + KEEP_SERVER, "the Server run() makes")
    return text


def sharing(releases, workers_file):
    """The versions of the releases that ship `workers_file`."""
    return [r.version for r in releases if r.workers_file == workers_file]


HEADER = """\
uvicorn-usr1-patch: SIGUSR1 (logrotate) support for the gunicorn worker of uvicorn {version}

Release:  uvicorn {version} (one of the releases {span} sharing this workers.py)
Expects:  uvicorn/workers.py with sha256 {sha256}
Problem:  {problem}
Changes:  Adds the package's own code (its comment-only lines and docstrings aside: the
          package's modules say why at length): uvicorn_usr1_patch/atomic_reopen.py,
          loop_reopen.py and worker_usr1.py between their "carried code" markers, and
          {init} as the package's wrapper does. SIGUSR1 only:
          - the handler never reopens inside the signal handler (a reopen there breaks a
            half written line: encode/uvicorn#1565): it schedules one reopen on the running
            event loop, a burst coalescing into one; a USR1 before the loop runs is
            remembered and done at the loop's first tick (callback_notify); one after the
            loop has ended is dropped with a line on stderr (the worker is exiting);
          - the reopen is atomic and appends: each log file is opened anew first and
            swapped in under its handler's lock; a file that cannot be opened keeps the old
            one (no line lost, nothing raised into a request) and one error line names the
            path, the errno, the uid and gid, and for EACCES the fix; a handler made with
            mode "w" is not truncated by a USR1 that comes without a rotation; a
            WatchedFileHandler gets the new inode. A worker refused (EACCES/EPERM) a file of
            gunicorn's that its master, another user, can open (logrotate's `create` owner
            vs gunicorn's --user) stops gracefully, and the master forks a fresh worker
            holding the master's new files; run() keeps uvicorn's Server as self.server
            for that;
          - at import (gunicorn's master imports this module before it forks), gunicorn's
            Logger.reopen_files is made atomic the same way: the master keeps its old file
            and keeps serving when it cannot open the new one.
Apply:    with the Python that runs gunicorn first on PATH (its venv active), in the directory
          holding this file (patch -d: nothing depends on where uvicorn is):
            site="$(python -c 'import os, uvicorn; print(os.path.dirname(uvicorn.__path__[0]))')"
            patch -d "$site" -p1 --forward < "$PWD/uvicorn-{version}.diff"
          or, for an unpacked uvicorn-{version} sdist or a vendored copy, -d its root directory.
          Then restart gunicorn (not HUP: the master must import the new workers.py).
Revert:   patch -d "$site" -p1 -R < "$PWD/uvicorn-{version}.diff"   (patch refuses to apply it
          twice); reinstalling uvicorn also reverts it, so apply it again after each reinstall.
Generated by tools/make_patches.py (uvicorn-usr1-patch) from the PyPI files and the package's
modules; do not edit.

"""

PROBLEMS = {
    PASS: "init_signals is `pass`: the worker keeps the master's handlers, USR1 never\n"
    "          reopens the worker's logs, which go on into the rotated file; the inherited\n"
    "          SIGCHLD handler swallows subprocess exit codes (encode/uvicorn#894).",
    RESET: "init_signals resets the signals to SIG_DFL: USR1 kills the worker; gunicorn\n"
    "          boots a new one and in-flight requests are dropped (encode/uvicorn#1565).",
}

INIT = {
    PASS: "UvicornWorker.init_signals (`pass`; UvicornH11Worker inherits it) now calls\n"
    "          install_worker_usr1(self)",
    RESET: "UvicornWorker.init_signals (UvicornH11Worker inherits it) keeps its reset to\n"
    "          SIG_DFL, then calls install_worker_usr1(self)",
}


def render(release, releases):
    source = release.workers.decode("utf-8")
    if not source.endswith("\n"):
        raise UnknownWorkersFile("uvicorn {}: workers.py lacks a final newline".format(release.version))
    patched = transform(source, release.workers_file)
    same = sharing(releases, release.workers_file)
    span = same[0] if len(same) == 1 else "{}-{}".format(same[0], same[-1])
    header = HEADER.format(
        version=release.version,
        span=span,
        sha256=release.sha256,
        problem=PROBLEMS[release.workers_file.family],
        init=INIT[release.workers_file.family],
    )
    return header + "".join(unified_diff(source.splitlines(True), patched.splitlines(True)))


def _hunk_range(start, stop):
    """difflib's unified range: 'first,length', a lone line as 'first', none as 'before,0'."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    return "{},{}".format(start + 1 if length else start, length)


def unified_diff(old, new, context=3):
    """difflib.unified_diff without the "popular lines" heuristic (autojunk): in a file this long
    it takes blank lines for junk, and the diff removes and re-adds a blank line of the release."""
    out = ["--- a/{}\n".format(WORKERS), "+++ b/{}\n".format(WORKERS)]
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        out.append(
            "@@ -{} +{} @@\n".format(
                _hunk_range(group[0][1], group[-1][2]), _hunk_range(group[0][3], group[-1][4])
            )
        )
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [" " + line for line in old[i1:i2]]
            else:
                out += ["-" + line for line in old[i1:i2]] + ["+" + line for line in new[j1:j2]]
    return out


def patched_source(release):
    return transform(release.workers.decode("utf-8"), release.workers_file)


def write_all(releases, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for release in releases:
        if release.affected:
            with open(
                os.path.join(out_dir, "uvicorn-{}.diff".format(release.version)), "w", newline="\n"
            ) as f:
                f.write(render(release, releases))


def check(releases):
    """Differences between the committed patches/ and a fresh generation (empty: identical)."""
    tmp = tempfile.mkdtemp(prefix="patches-check-")
    try:
        write_all(releases, tmp)
        fresh = sorted(os.listdir(tmp))
        committed = sorted(os.path.basename(p) for p in glob.glob(os.path.join(PATCHES, "*.diff")))
        problems = ["missing from patches/: " + n for n in sorted(set(fresh) - set(committed))]
        problems += ["not generated (stale): patches/" + n for n in sorted(set(committed) - set(fresh))]
        for name in sorted(set(fresh) & set(committed)):
            if not filecmp.cmp(os.path.join(tmp, name), os.path.join(PATCHES, name), shallow=False):
                problems.append("differs from the generated file: patches/" + name)
        return problems
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def describe(release):
    if release.affected:
        return "affected  {}  workers.py {}".format(release.sha256[:12], release.workers_file.name)
    if release.wheel is None and release.sdist is None:
        return "-         pip cannot prepare its sdist (broken setup.py): not installable"
    if release.workers is None:
        return "-         no uvicorn/workers.py"
    return "-         {}  handles SIGUSR1".format(release.sha256[:12])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare patches/ with a fresh generation")
    parser.add_argument("--list", action="store_true", help="print what was found for each release")
    args = parser.parse_args(argv)
    releases = survey()
    if args.list:
        for r in releases:
            print("{:14} {}".format(r.version, describe(r)))
        return 0
    if args.check:
        problems = check(releases)
        for p in problems:
            print(p)
        print("patches/ is {}".format("out of date" if problems else "up to date"))
        return 1 if problems else 0
    for old in glob.glob(os.path.join(PATCHES, "*.diff")):
        os.remove(old)
    write_all(releases, PATCHES)
    print("wrote {} diffs to {}".format(sum(r.affected for r in releases), PATCHES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
