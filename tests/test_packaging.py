"""The .pth really ships: built, installed, recorded, working and uninstalled, on old and new Pythons.

Everything runs on a copy of the checkout in a temporary directory (pip and build write build/ and
*.egg-info next to setup.py), in throwaway venvs made with uv whose installs are done by each venv's
own pip: pip 21.3 on Python 3.6 (old setuptools, legacy `setup.py develop` for -e), the newest pip
and the newest setuptools that build isolation fetches elsewhere (PEP 660 editable installs).
"""

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

from tools import venvs  # tests/conftest.py puts the checkout on sys.path

REPO = venvs.REPO

PTH = "uvicorn_usr1_patch.pth"
PYTHONS = ["3.6", "3.8", "3.11", "3.13"]
MODES = ["dir", "wheel", "sdist", "editable"]
DUMMY_DIFF = "zz-test-only.diff"
COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".venvs",
    ".pytest_cache",
    ".ruff_cache",
    "demo-output",
)

# Runs in the venv under test (any Python from 3.6), from a directory outside the source tree.
CHECK_HOOK = r"""
import json, sys
ours = [f for f in sys.meta_path if getattr(f, "uvicorn_usr1_patch", False)]
out = {
    "finders": [type(f).__module__ + "." + type(f).__name__ for f in ours],
    "loaded_at_start": sorted(m for m in sys.modules if m.startswith("uvicorn_usr1_patch")),
}
import uvicorn.workers
from uvicorn_usr1_patch import worker_patch
import uvicorn_usr1_patch
out["patched"] = worker_patch.is_patched(uvicorn.workers.UvicornWorker)
out["package_file"] = uvicorn_usr1_patch.__file__
print(json.dumps(out))
"""

# The same, up to what the start-up did (no uvicorn needed).
CHECK_START = CHECK_HOOK.split("import uvicorn.workers")[0] + "print(json.dumps(out))\n"

FAKE_WORKERS = """
class Worker(object):
    def init_signals(self):
        pass


class UvicornWorker(Worker):
    def init_signals(self):
        pass
"""


def _env(**extra):
    env = dict(os.environ)
    for name in (
        "PYTHONPATH",
        "PYTHONHOME",
        "VIRTUAL_ENV",
        "UVICORN_USR1_PATCH",
        "PIP_USER",
        "PYTHONNOUSERSITE",
    ):
        env.pop(name, None)
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PIP_NO_WARN_SCRIPT_LOCATION="1")
    env.update(extra)
    return env


def _run(args, cwd, env=None, check=True):
    proc = subprocess.run(
        args,
        cwd=cwd,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            "{} exited {}\n--- stdout\n{}\n--- stderr\n{}".format(
                args, proc.returncode, proc.stdout, proc.stderr
            )
        )
    return proc


def _record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A copy of the checkout; with one dummy patches/*.diff if the checkout has none yet."""
    src = str(tmp_path_factory.mktemp("pkg") / "src")
    shutil.copytree(REPO, src, ignore=COPY_IGNORE)
    patches = os.path.join(src, "patches")
    os.makedirs(patches, exist_ok=True)
    if not [n for n in os.listdir(patches) if n.endswith(".diff")]:
        with open(os.path.join(patches, DUMMY_DIFF), "w") as f:
            f.write("--- a/uvicorn/workers.py\n+++ b/uvicorn/workers.py\n@@ -1 +1 @@\n-x\n+y\n")
    return src


@pytest.fixture(scope="module")
def diffs(source):
    return sorted(n for n in os.listdir(os.path.join(source, "patches")) if n.endswith(".diff"))


@pytest.fixture(scope="module")
def tools_venv():
    """Where `build` and `twine` are: the interpreter running the tests (tools/bootstrap.sh puts
    them there), else a cached venv."""
    here = venvs.Venv(sys.prefix)
    here.python, here.bin = sys.executable, os.path.dirname(sys.executable)
    try:
        import build  # noqa: F401
        import twine  # noqa: F401

        if os.path.exists(os.path.join(here.bin, "twine")):
            return here
    except ImportError:
        pass
    return venvs.ensure("3.11", ["build", "twine"], with_patch=False)


@pytest.fixture(scope="module")
def dists(source, tools_venv, tmp_path_factory):
    """`python -m build` of the copy: {'sdist': path, 'wheel': path}."""
    out = str(tmp_path_factory.mktemp("dist"))
    _run([tools_venv.python, "-m", "build", "--outdir", out, source], cwd=source)
    found = {}
    for name in os.listdir(out):
        found["wheel" if name.endswith(".whl") else "sdist"] = os.path.join(out, name)
    assert sorted(found) == ["sdist", "wheel"], os.listdir(out)
    return found


@pytest.fixture(scope="module")
def fake_uvicorn(tmp_path_factory):
    root = tmp_path_factory.mktemp("fake_uvicorn")
    (root / "uvicorn").mkdir()
    (root / "uvicorn" / "__init__.py").write_text("")
    (root / "uvicorn" / "workers.py").write_text(FAKE_WORKERS)
    return str(root)


def _version(source):
    namespace = {}
    with open(os.path.join(source, "uvicorn_usr1_patch", "__init__.py")) as f:
        for line in f:
            if line.startswith("__version__"):
                exec(line, namespace)
    return namespace["__version__"]


def test_version_lives_in_one_place(source, dists):
    version = _version(source)
    pattern = re.compile(r"(?<![\d.]){}(?![\d.])".format(re.escape(version)))
    candidates = ["setup.py", "setup.cfg", "pyproject.toml", "MANIFEST.in"]
    package = os.path.join(source, "uvicorn_usr1_patch")
    candidates += [os.path.join("uvicorn_usr1_patch", n) for n in os.listdir(package)]
    hits = []
    for name in candidates:
        if name.endswith((".py", ".cfg", ".toml", ".in")):
            with open(os.path.join(source, name)) as f:
                if pattern.search(f.read()):
                    hits.append(name)
    assert hits == [os.path.join("uvicorn_usr1_patch", "__init__.py")]
    with open(os.path.join(source, "setup.cfg")) as f:
        assert "version = attr: uvicorn_usr1_patch.__version__" in f.read()
    assert "-{}-".format(version) in os.path.basename(dists["wheel"])
    assert os.path.basename(dists["sdist"]).endswith("-{}.tar.gz".format(version))


def test_twine_check_strict(dists, tools_venv):
    proc = _run(
        [os.path.join(tools_venv.bin, "twine"), "check", "--strict", dists["sdist"], dists["wheel"]], "/"
    )
    assert proc.stdout.count("PASSED") == 2, proc.stdout


def test_wheel_has_pth_at_root_and_in_record_and_the_diffs(dists, source, diffs):
    with zipfile.ZipFile(dists["wheel"]) as whl:
        names = whl.namelist()
        record_name = next(n for n in names if n.endswith(".dist-info/RECORD"))
        record = whl.read(record_name).decode()
        pth = whl.read(PTH)
        metadata = whl.read(record_name.replace("RECORD", "METADATA")).decode()
    with open(os.path.join(source, PTH), "rb") as f:
        assert pth == f.read()
    assert "{},{},{}".format(PTH, _record_hash(pth), len(pth)) in record.splitlines()
    assert not [n for n in names if n.endswith(".pth") and n != PTH]
    assert "uvicorn_usr1_patch_hook.py" in names  # the one module the .pth imports
    for diff in diffs:
        assert "uvicorn_usr1_patch/patches/" + diff in names
    assert not [n for n in names if n.startswith(("tests/", "tools/", "patches/"))]
    # No requirements: installing the fix must never move a pinned uvicorn/gunicorn (nor wrapt).
    assert [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")] == []
    assert "Requires-Python: >=3.6" in metadata


def test_sdist_has_pth_and_diffs(dists, diffs):
    with tarfile.open(dists["sdist"]) as sdist:
        names = [n.split("/", 1)[1] for n in sdist.getnames() if "/" in n]
    for needed in [PTH, "setup.py", "setup.cfg", "pyproject.toml", "MANIFEST.in", "LICENSE", "README.md"]:
        assert needed in names
    for diff in diffs:
        assert "patches/" + diff in names


def _make_venv(python_minor, where):
    interpreter = venvs.require_python(python_minor)
    path = os.path.join(where, "venv")
    _run([venvs.uv(), "venv", "-q", "-p", interpreter, path], cwd=where)
    venv = venvs.Venv(path)
    # pip itself (3.6 gets pip 21.3.1, the last for it), from uv's cache.
    _run([venvs.uv(), "pip", "install", "-q", "--python", venv.python, "pip"], cwd=where)
    return venv


def _installed_record(site_packages):
    infos = [
        n
        for n in os.listdir(site_packages)
        if n.startswith("uvicorn_usr1_patch-") and n.endswith(".dist-info")
    ]
    assert len(infos) == 1, os.listdir(site_packages)
    with open(os.path.join(site_packages, infos[0], "RECORD")) as f:
        return f.read().splitlines()


# Every install mode on every Python, and pyproject.toml's floor (setuptools 40.8, the first with
# build_meta) on Python 3.6 without build isolation.
FLOOR = "dir-setuptools-40.8"
CASES = [(python_minor, mode) for python_minor in PYTHONS for mode in MODES] + [("3.6", FLOOR)]


@pytest.mark.parametrize("python_minor, mode", CASES)
def test_install_hook_uninstall(python_minor, mode, source, dists, diffs, fake_uvicorn, tmp_path):
    where = str(tmp_path)
    venv = _make_venv(python_minor, where)
    site_packages = venv.site_packages()
    pip = [venv.python, "-m", "pip"]
    # A fresh tree per case: an in-tree build leaves build/lib behind, whose stale files would
    # end up in the next wheel and could hide a .pth that build_py failed to add.
    tree = os.path.join(where, "src")
    shutil.copytree(source, tree, ignore=COPY_IGNORE)
    install = pip + ["install", "-q"]
    if mode == FLOOR:
        _run(
            [venvs.uv(), "pip", "install", "-q", "--python", venv.python, "setuptools==40.8.0", "wheel"],
            where,
        )
        install += ["--no-build-isolation", tree]
    elif mode == "editable":
        install += ["-e", tree]
    else:
        install += [{"dir": tree, "wheel": dists["wheel"], "sdist": dists["sdist"]}[mode]]
    _run(install, cwd=where)
    legacy_develop = mode == "editable" and python_minor == "3.6"

    pth_path = os.path.join(site_packages, PTH)
    assert os.path.isfile(pth_path), sorted(os.listdir(site_packages))
    with open(pth_path, "rb") as f, open(os.path.join(source, PTH), "rb") as g:
        pth = f.read()
        assert pth == g.read()
    if legacy_develop:
        assert os.path.exists(os.path.join(site_packages, "uvicorn-usr1-patch.egg-link"))
    else:
        record = _installed_record(site_packages)
        assert [line for line in record if line.startswith(PTH + ",")] == [
            "{},{},{}".format(PTH, _record_hash(pth), len(pth))
        ]
        if mode == "editable":  # PEP 660 (setuptools 64+), not a silent fallback to `setup.py develop`
            assert [line for line in record if line.startswith("__editable__.uvicorn_usr1_patch-")]

    # A fresh interpreter of the venv: the .pth has put our finder in sys.meta_path (once, even though
    # a venv processes site-packages twice) and `import uvicorn.workers` comes out patched.
    proc = _run([venv.python, "-c", CHECK_HOOK], cwd=where, env=_env(PYTHONPATH=fake_uvicorn))
    assert proc.stderr == ""
    seen = json.loads(proc.stdout)
    assert seen["finders"] == ["uvicorn_usr1_patch_hook.UvicornWorkerFinder"]
    assert seen["loaded_at_start"] == ["uvicorn_usr1_patch_hook"]
    assert seen["patched"] is True
    package_dir = os.path.dirname(seen["package_file"])
    if mode == "editable":
        assert os.path.realpath(package_dir) == os.path.realpath(os.path.join(tree, "uvicorn_usr1_patch"))
    else:
        assert os.path.realpath(package_dir) == os.path.realpath(
            os.path.join(site_packages, "uvicorn_usr1_patch")
        )
        assert (
            sorted(n for n in os.listdir(os.path.join(package_dir, "patches")) if n.endswith(".diff"))
            == diffs
        )
    # The opt-out: nothing of ours is imported, no finder.
    off = _run(
        [venv.python, "-c", CHECK_START],
        cwd=where,
        env=_env(UVICORN_USR1_PATCH="off"),
    )
    assert json.loads(off.stdout) == {"finders": [], "loaded_at_start": []}

    _run(pip + ["uninstall", "-y", "uvicorn-usr1-patch"], cwd=where)
    after = _run([venv.python, "-c", "import sys; print(len(sys.meta_path))"], cwd=where)
    if legacy_develop:
        # `pip uninstall` of a `setup.py develop` install removes the egg-link, not files that
        # develop copied: the orphaned .pth stays, and must be silent while the program runs.
        assert os.path.isfile(pth_path)
    else:
        assert not os.path.exists(pth_path)
        assert not os.path.exists(os.path.join(site_packages, "uvicorn_usr1_patch"))
    assert after.stderr == ""
    assert after.stdout.strip().isdigit()
    gone = _run([venv.python, "-c", "import uvicorn_usr1_patch"], cwd=where, check=False)
    assert gone.returncode != 0 and "No module named" in gone.stderr


@pytest.mark.parametrize("python_minor", ["3.6", "3.13"])
def test_setup_py_develop_directly(python_minor, source, tmp_path):
    # Deprecated but still typed by people: setuptools < 80 links the tree and setup.py copies the
    # .pth (removed again by `develop -u`); from 80 on develop runs `pip install -e .` (PEP 660).
    where = str(tmp_path)
    venv = _make_venv(python_minor, where)
    _run([venvs.uv(), "pip", "install", "-q", "--python", venv.python, "setuptools", "wheel"], cwd=where)
    tree = os.path.join(where, "src")
    shutil.copytree(source, tree, ignore=COPY_IGNORE)
    site_packages = venv.site_packages()
    _run([venv.python, "setup.py", "-q", "develop"], cwd=tree)
    assert os.path.isfile(os.path.join(site_packages, PTH))
    seen = json.loads(_run([venv.python, "-c", CHECK_START], cwd=where).stdout)
    assert seen["finders"] == ["uvicorn_usr1_patch_hook.UvicornWorkerFinder"]
    if os.path.exists(os.path.join(site_packages, "uvicorn-usr1-patch.egg-link")):
        _run([venv.python, "setup.py", "-q", "develop", "--uninstall"], cwd=tree)
    else:
        _run([venv.python, "-m", "pip", "uninstall", "-y", "uvicorn-usr1-patch"], cwd=where)
    assert not os.path.exists(os.path.join(site_packages, PTH))
