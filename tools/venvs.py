"""Cached virtual environments holding real uvicorn/gunicorn releases from PyPI.

Made with uv (fast, and it can drive every pyenv Python from 3.6 on). A venv is keyed by
its Python and requirements, so it is built once per machine and reused; our own package
is installed from a wheel built from this checkout's sources (rebuilt when they change; keyed by
their content, so other checkouts and CI's fresh clone reuse it).
"""

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from uvicorn_usr1_patch.releases import version_key  # noqa: E402

# Outside the checkout, so CI's fresh clone and other worktrees reuse what is already built.
VENVS = os.environ.get("UVICORN_USR1_PATCH_VENVS", os.path.expanduser("~/.cache/uvicorn-usr1-patch/venvs"))
# Venvs for workers that drop privileges (gunicorn as root with --user nobody): root's home
# is 0700, so `nobody` can reach neither pyenv's Pythons nor the venvs above. These live under a
# world-readable, root-owned directory, on copies of pyenv's interpreters (see shared_python).
SHARED = os.environ.get("UVICORN_USR1_PATCH_SHARED", "/opt/uvicorn-usr1-patch")
# In every venv: gunicorn < 21 imports pkg_resources, which setuptools 81 removed.
BASE = ["pip", "setuptools<70"]
SOURCES = ["setup.py", "setup.cfg", "pyproject.toml", "MANIFEST.in"]
SOURCES += ["uvicorn_usr1_patch.pth", "uvicorn_usr1_patch_hook.py"]
# Read by the build for the wheel's metadata only (long description, licence): not in the key.
METADATA = ["README.md", "LICENSE"]


def pyenv_root():
    root = os.environ.get("PYENV_ROOT")
    if root:
        return root
    try:
        return subprocess.check_output(["pyenv", "root"], universal_newlines=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return os.path.expanduser("~/.pyenv")


def pythons():
    """{'3.8': '/.../3.8.18/bin/python', ...}: the newest patch release of each minor 3.x."""
    found = {}
    for path in sorted(
        glob.glob(os.path.join(pyenv_root(), "versions", "3.*", "bin", "python")),
        key=lambda p: version_key(p.split(os.sep)[-3]),
    ):
        minor = ".".join(path.split(os.sep)[-3].split(".")[:2])
        found[minor] = path
    return found


def python(minor):
    """The interpreter for '3.8' etc., or None when this machine has none."""
    return pythons().get(minor)


def require_python(minor):
    """The interpreter for '3.8' etc.; a missing one is an error, so a test needing it fails."""
    found = python(minor)
    if found is None:
        raise LookupError(
            "no Python {0} under {1}/versions: `pyenv install {0}`, or `python -m tools.venvs "
            "--install-pythons` for every Python the tests need (.ci/run runs it)".format(minor, pyenv_root())
        )
    return found


def install_pythons(minors):
    """`pyenv install` the newest patch release of each missing minor; the list installed."""
    missing = [m for m in minors if python(m) is None]
    for minor in missing:
        subprocess.check_call(["pyenv", "install", "--skip-existing", minor], stdout=sys.stderr)
    return missing


def uv():
    exe = shutil.which("uv")
    if exe:
        return exe
    candidate = os.path.join(os.path.dirname(sys.executable), "uv")
    if os.path.exists(candidate):
        return candidate
    raise RuntimeError("uv is not installed: run `python -m pip install uv` (.ci/run does)")


def _wheel_inputs():
    """The files the wheel's contents come from, as paths relative to the checkout."""
    names = list(SOURCES)
    for pattern in ("uvicorn_usr1_patch/*.py", "patches/*.diff"):
        names += sorted(os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, pattern)))
    return names


def _sources_digest():
    """Keyed by relative names and bytes only: every checkout of the same sources shares one wheel."""
    digest = hashlib.sha256()
    for name in _wheel_inputs():
        with open(os.path.join(REPO, name), "rb") as f:
            digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path):
    """Serialise builders of the same venv or wheel (parallel tests, several checkouts)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def wheel():
    """Build (once per source state) and return the path of this checkout's wheel."""
    out = os.path.join(VENVS, "wheel-" + _sources_digest())
    with _locked(out):
        return _build_wheel(out)


def _build_wheel(out):
    found = glob.glob(os.path.join(out, "uvicorn_usr1_patch-*.whl"))
    if found:
        return found[0]
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    # Built from a copy: setuptools writes build/ and *.egg-info/ beside the sources it builds,
    # and the checkout is not ours to write into (README.md and LICENSE are the metadata's).
    source = tempfile.mkdtemp(prefix="wheel-source-", dir=VENVS)
    try:
        for name in _wheel_inputs() + METADATA:
            target = os.path.join(source, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(os.path.join(REPO, name), target)
        subprocess.check_output(
            [uv(), "build", "-q", "--wheel", "--out-dir", tmp, source], stderr=subprocess.STDOUT
        )
    finally:
        shutil.rmtree(source, ignore_errors=True)
    os.rename(tmp, out)
    return glob.glob(os.path.join(out, "uvicorn_usr1_patch-*.whl"))[0]


class Venv(object):
    def __init__(self, path, env=None):
        self.path = path
        self.python = os.path.join(path, "bin", "python")
        self.bin = os.path.join(path, "bin")
        self.env = dict(env or {})  # what its interpreter needs in the environment

    def site_packages(self):
        return subprocess.check_output(
            [self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            universal_newlines=True,
        ).strip()

    def versions(self, *dists):
        code = (
            "import json, sys\n"
            "try:\n from importlib.metadata import version\n"
            "except ImportError:\n from pkg_resources import get_distribution\n"
            " version = lambda n: get_distribution(n).version\n"
            "out = {}\n"
            "for n in sys.argv[1:]:\n"
            " try: out[n] = version(n)\n"
            " except Exception: out[n] = None\n"
            "print(json.dumps(out))"
        )
        return json.loads(
            subprocess.check_output([self.python, "-c", code] + list(dists), universal_newlines=True)
        )

    def __repr__(self):
        return "Venv({!r})".format(self.path)


def ensure(python_minor, requirements, with_patch=True):
    """A venv on pyenv's Python `python_minor` with `requirements` (+ our wheel if asked).

    Raises LookupError when this machine has no such Python, and CalledProcessError (with
    uv's output) when the requirements cannot be installed on it.
    """
    return _ensure(VENVS, require_python(python_minor), python_minor, requirements, with_patch)


def _ensure(root, interpreter, python_minor, requirements, with_patch, env=None, link_mode=None):
    key = hashlib.sha256(json.dumps([interpreter, BASE, sorted(requirements)]).encode()).hexdigest()[:12]
    label = "py{}-{}".format(
        python_minor, "-".join(r.replace("==", "").replace("[standard]", "") for r in requirements)
    )[:80]
    # With the package: one venv per state of its sources, so that checkouts of different sources
    # (a worktree, CI's clone, the demo) never reinstall the package under each other's tests.
    suffix = "-patch" + _sources_digest()[:8] if with_patch else "-nopatch"
    path = os.path.join(root, "{}-{}{}".format(label, key, suffix))
    venv = Venv(path, env)
    with _locked(path):
        _populate(venv, interpreter, requirements, with_patch, link_mode)
    return venv


def ensure_shared(python_minor, requirements, with_patch=True):
    """As ensure(), under SHARED/venvs on a copy of the interpreter (shared_python): a venv
    that a worker running as `nobody` can import from. Every file is root's and not
    writable by group or others (shared_tree_problems() checks it)."""
    prefix = shared_python(python_minor)
    interpreter = os.path.join(prefix, "bin", "python" + python_minor)
    env = {"LD_LIBRARY_PATH": os.path.join(prefix, "lib")}
    # copies, not hard links into root's uv cache
    root = os.path.join(SHARED, "venvs")
    venv = _ensure(root, interpreter, python_minor, requirements, with_patch, env, "copy")
    _make_read_only_for_others(SHARED)  # whatever the umask: lock files and markers too
    return venv


def shared_python(python_minor):
    """SHARED/pythons/<version>: pyenv's Python `python_minor` (its interpreter, libpython and
    standard library, without the test suite and pyenv's site-packages), readable by everyone.

    pyenv builds link bin/pythonX.Y against lib/libpythonX.Y.so with a RUNPATH in root's home:
    a process started as another user needs LD_LIBRARY_PATH=<copy>/lib (Venv.env carries it).
    The copy finds its standard library from its own location, so sys.prefix is the copy.
    """
    source = require_python(python_minor)
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(source)))
    target = os.path.join(SHARED, "pythons", os.path.basename(prefix))
    with _locked(target):
        if not os.path.exists(os.path.join(target, ".complete")):
            shutil.rmtree(target, ignore_errors=True)
            os.makedirs(os.path.join(target, "bin"))
            name = "python" + python_minor
            shutil.copy2(os.path.join(prefix, "bin", name), os.path.join(target, "bin", name))
            stdlib = os.path.join("lib", name)
            skip = {"test", "site-packages", "idlelib", "tkinter", "turtledemo", "lib2to3"}
            shutil.copytree(
                os.path.join(prefix, stdlib),
                os.path.join(target, stdlib),
                symlinks=True,
                ignore=lambda d, names: (
                    [n for n in names if n in skip or n.startswith("config-")]
                    if d == os.path.join(prefix, stdlib)
                    else []
                ),
            )
            os.makedirs(os.path.join(target, stdlib, "site-packages"))
            for lib in glob.glob(os.path.join(prefix, "lib", "libpython*")):
                shutil.copy2(lib, os.path.join(target, "lib"), follow_symlinks=False)
            _make_read_only_for_others(target)
            open(os.path.join(target, ".complete"), "w").close()
    return target


def _make_read_only_for_others(root):
    """Drop group/other write bits on `root` and everything under it: nothing a worker
    running as `nobody` could change."""
    for path in [root] + [os.path.join(d, n) for d, dirs, files in os.walk(root) for n in dirs + files]:
        if os.path.islink(path):
            continue
        mode = os.stat(path).st_mode
        wanted = (mode & ~0o022) | (0o755 if os.path.isdir(path) else 0o444)
        if wanted & 0o7777 != mode & 0o7777:
            os.chmod(path, wanted & 0o7777)


def shared_tree_problems(root=None):
    """Paths under SHARED (or `root`) that another user could write, or not owned by root."""
    root = root or SHARED
    problems = []
    for directory, _, files in os.walk(root):
        for path in [directory] + [os.path.join(directory, n) for n in files]:
            st = os.lstat(path)
            if os.path.islink(path):
                continue
            if st.st_uid != 0 or st.st_mode & 0o022:
                problems.append("{} (uid {}, mode {:o})".format(path, st.st_uid, st.st_mode & 0o7777))
    return problems


def _populate(venv, interpreter, requirements, with_patch, link_mode=None):
    path = venv.path
    if not os.path.exists(os.path.join(path, ".complete")):
        shutil.rmtree(path, ignore_errors=True)
        subprocess.check_output([uv(), "venv", "-q", "-p", interpreter, path], stderr=subprocess.STDOUT)
        _uv_install(venv, list(requirements) + BASE, link_mode)
        open(os.path.join(path, ".complete"), "w").close()
    if with_patch:
        built = wheel()
        marker = os.path.join(path, ".patch-wheel")
        if not os.path.exists(marker) or open(marker).read() != built:
            _uv_install(venv, ["--reinstall-package", "uvicorn-usr1-patch", built], link_mode)
            with open(marker, "w") as f:
                f.write(built)


def _uv_install(venv, args, link_mode=None):
    # CalledProcessError.output carries uv's explanation when a combination cannot install
    extra = ["--link-mode", link_mode] if link_mode else []
    subprocess.check_output(
        [uv(), "pip", "install", "-q", "--python", venv.python] + extra + args,
        stderr=subprocess.STDOUT,
        universal_newlines=True,
    )


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tools.venvs", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--install-pythons",
        action="store_true",
        help="pyenv install each Python of tools/stacks.py PYTHONS that this machine lacks",
    )
    args = parser.parse_args(argv)
    if args.install_pythons:
        from tools.stacks import PYTHONS

        installed = install_pythons(PYTHONS)
        print("venvs: installed {}".format(" ".join(installed) or "nothing (every Python is there)"))
        missing = [m for m in PYTHONS if python(m) is None]
        if missing:
            sys.exit("venvs: still no Python " + " ".join(missing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
