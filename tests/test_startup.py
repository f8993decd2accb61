"""Start-up behaviour of uvicorn_usr1_patch.pth, in fresh interpreters of real venvs.

Each test makes a throwaway venv (uv, pyenv's Python) and puts this checkout's package and
.pth into its site-packages as an install would, so the .pth runs at a real start-up,
twice, as in every venv (CPython bpo-31542). uvicorn and gunicorn are stand-ins on
PYTHONPATH: these tests are about the hook, not about a server.
"""

import json
import os
import shutil
import subprocess
import textwrap

import pytest

from tools import venvs  # tests/conftest.py puts the checkout on sys.path

REPO = venvs.REPO

PTH = "uvicorn_usr1_patch.pth"
OURS = {"uvicorn_usr1_patch_hook"}
OLDEST, NEWEST = "3.6", "3.13"
FINDER = "uvicorn_usr1_patch_hook.UvicornWorkerFinder"

HERE = os.path.dirname(os.path.abspath(__file__))
# Stand-ins put first on PYTHONPATH (real files under tests/fakes/): a gunicorn-like base worker,
# a uvicorn whose UvicornWorker is as in 0.4-0.13 (init_signals does nothing, calls counted), and a
# user subclass (myworkers.py); a uvicorn.workers without UvicornWorker; a wrapt that will not import
# (which the package does not need).
FAKES = os.path.join(HERE, "fakes")
STARTUP_FAKES = os.path.join(FAKES, "startup")
UVICORN_WITHOUT_WORKER = os.path.join(FAKES, "uvicorn_without_worker")
BROKEN_WRAPT = os.path.join(FAKES, "broken_wrapt")
with open(os.path.join(HERE, "probes", "startup_prelude.py")) as _f:
    PROBE = _f.read()


def _fake_source(name):
    with open(os.path.join(STARTUP_FAKES, name)) as f:
        return f.read()


def _clean_env(**extra):
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "UVICORN_USR1_PATCH", "PYTHONWARNINGS"):
        env.pop(name, None)
    env.update(extra)
    return env


class Env(object):
    """A venv whose site-packages holds (optionally) our package and our .pth."""

    def __init__(self, path, python_minor):
        self.venv = venvs.Venv(path)
        self.python = self.venv.python
        self.python_minor = python_minor
        self.site_packages = self.venv.site_packages()
        self.path = path

    def run(self, code, *args, env=None, flags=(), cwd=None, pythonpath=()):
        environ = _clean_env(**(env or {}))
        if pythonpath:
            environ["PYTHONPATH"] = os.pathsep.join(pythonpath)
        return subprocess.run(
            [self.python]
            + list(flags)
            + (["-c", PROBE + textwrap.dedent(code)] if code is not None else [])
            + list(args),
            cwd=cwd or self.path,
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def report(self, code, *args, **kwargs):
        proc = self.run(code, *args, **kwargs)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.splitlines()[-1]), proc


@pytest.fixture
def make_env(tmp_path):
    """make_env('3.6', package=True, pth=True) -> Env (fails if no such Python)."""
    made = []

    def make(python_minor, package=True, pth=True):
        interpreter = venvs.require_python(python_minor)
        path = str(tmp_path / "venv{}".format(len(made)))
        subprocess.run([venvs.uv(), "venv", "-q", "-p", interpreter, path], check=True, capture_output=True)
        env = Env(path, python_minor)
        if package:
            shutil.copytree(
                os.path.join(REPO, "uvicorn_usr1_patch"),
                os.path.join(env.site_packages, "uvicorn_usr1_patch"),
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
            shutil.copy(os.path.join(REPO, "uvicorn_usr1_patch_hook.py"), env.site_packages)
        if pth:
            shutil.copy(os.path.join(REPO, PTH), env.site_packages)
        made.append(env)
        return env

    return make


def _modules_at_start(env, **kwargs):
    proc = env.run("import sys; print(json.dumps(sorted(set(sys.modules) - {'json'})))", **kwargs)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return set(json.loads(proc.stdout))


# The PROBE prelude itself imports json and signal; the count is taken on a bare start instead.
BARE_COUNT = "import sys; print(len(sys.modules)); print('\\n'.join(sorted(sys.modules)))"


def _bare_modules(env, **kwargs):
    proc = subprocess.run(
        [env.python, "-c", BARE_COUNT], cwd=env.path, env=_clean_env(**kwargs), capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    lines = proc.stdout.splitlines()
    return int(lines[0]), set(lines[1:])


# What site itself loads to read any .pth file (3.13+ decodes .pth files as utf-8-sig first):
# the interpreter's cost of a .pth, present with any other .pth in the venv (setuptools' own etc.).
SITE_PTH_DECODER = {"encodings.utf_8_sig"}


@pytest.mark.parametrize("python_minor", ["3.6", "3.8", "3.11", "3.13"])
def test_pth_adds_only_our_two_modules_at_start(python_minor, make_env, capsys):
    bare = make_env(python_minor, pth=False)
    neutral = make_env(python_minor, pth=False)
    with open(os.path.join(neutral.site_packages, "neutral.pth"), "w") as f:
        f.write("# a .pth that does nothing\n")
    with_pth = make_env(python_minor)
    count_bare, modules_bare = _bare_modules(bare)
    count_neutral, modules_neutral = _bare_modules(neutral)
    count_with, modules_with = _bare_modules(with_pth)
    count_off, modules_off = _bare_modules(with_pth, UVICORN_USR1_PATCH="0")
    assert modules_with - modules_neutral == OURS
    assert modules_neutral - modules_with == set()
    assert modules_off == modules_neutral
    assert modules_neutral - modules_bare <= SITE_PTH_DECODER
    with capsys.disabled():
        print(
            "\n[start-up modules] Python {}: {} with no .pth, {} with a no-op .pth, {} with ours "
            "(+{}: {}), {} with UVICORN_USR1_PATCH=0".format(
                python_minor,
                count_bare,
                count_neutral,
                count_with,
                count_with - count_neutral,
                ", ".join(sorted(OURS)),
                count_off,
            )
        )
    # The hook is in place once, although the venv processed the .pth twice.
    seen, _ = with_pth.report("report()")
    assert seen["finders"] == [FINDER]


@pytest.mark.parametrize("value", ["0", "off", "false", " OFF ", "False", "no", "disable"])
@pytest.mark.parametrize("python_minor", [OLDEST, NEWEST])
def test_opt_out_loads_nothing_of_ours(python_minor, value, make_env):
    env = make_env(python_minor)
    seen, proc = env.report(
        """
        at_start = ours(), sorted(m for m in sys.modules if m.startswith("uvicorn_usr1_patch"))
        import uvicorn.workers
        after_import = sorted(m for m in sys.modules if m.startswith("uvicorn_usr1_patch"))
        import uvicorn_usr1_patch
        report(at_start=at_start, after_import=after_import, install=uvicorn_usr1_patch.install())
        """,
        env={"UVICORN_USR1_PATCH": value},
        pythonpath=[STARTUP_FAKES],
    )
    assert seen["at_start"] == [[], []]
    assert seen["after_import"] == []
    assert seen["install"] is False
    assert seen["finders"] == []
    assert proc.stderr == ""


@pytest.mark.parametrize("flags", [[], ["-W", "error"], ["-X", "dev"], ["-I"]])
@pytest.mark.parametrize("python_minor", [OLDEST, NEWEST])
def test_orphaned_pth_is_silent(python_minor, flags, make_env):
    env = make_env(python_minor, package=False)
    assert os.path.exists(os.path.join(env.site_packages, PTH))
    proc = env.run("import sys; print('program ran', len(sys.argv))", "arg", flags=flags)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == "program ran 2\n"


@pytest.mark.parametrize("python_minor", [OLDEST, NEWEST])
def test_double_processing_in_a_venv_installs_one_finder_and_patches_once(python_minor, make_env):
    env = make_env(python_minor)
    # A second .pth, sorted after ours, counts how often site ran the .pth files of this venv.
    with open(os.path.join(env.site_packages, "zz_count_runs.pth"), "w") as f:
        f.write("import sys; sys.__dict__['_pth_runs'] = sys.__dict__.get('_pth_runs', 0) + 1\n")
    seen, proc = env.report(
        """
        import uvicorn.workers
        from uvicorn_usr1_patch import install, worker_patch
        install()
        install()
        cls = uvicorn.workers.UvicornWorker
        handler = run_worker(cls)
        report(runs=sys._pth_runs, patched=worker_patch.is_patched(cls), layers=layers(cls),
               handler=handler, calls=cls.calls)
        """,
        pythonpath=[STARTUP_FAKES],
    )
    assert seen["runs"] == 2  # bpo-31542: the double processing really happens here
    assert seen["finders"] == [FINDER]
    assert seen == dict(seen, patched=True, layers=1, handler="LoopReopen", calls=1)
    assert proc.stderr == ""


@pytest.mark.parametrize("python_minor", [OLDEST, NEWEST])
def test_addsitedir_twice_installs_one_finder(python_minor, make_env):
    env = make_env(python_minor, pth=False)
    site_dir = os.path.join(env.path, "site_dir")
    os.makedirs(site_dir)
    shutil.copy(os.path.join(REPO, PTH), site_dir)
    seen, proc = env.report(
        """
        import site
        before = ours()
        site.addsitedir(sys.argv[1])
        site.addsitedir(sys.argv[1])
        import uvicorn.workers
        from uvicorn_usr1_patch import worker_patch
        report(before=before, layers=layers(uvicorn.workers.UvicornWorker),
               patched=worker_patch.is_patched(uvicorn.workers.UvicornWorker))
        """,
        site_dir,
        pythonpath=[STARTUP_FAKES],
    )
    assert seen["before"] == []
    assert seen["finders"] == [FINDER]
    assert (seen["patched"], seen["layers"]) == (True, 1)
    assert proc.stderr == ""


@pytest.mark.parametrize("how", ["pth", "install"])
@pytest.mark.parametrize("python_minor", [OLDEST, NEWEST])
def test_target_imported_before_the_hook_is_patched_at_once(python_minor, how, make_env):
    # -S: no .pth at start, so uvicorn.workers is imported first; then the .pth (through
    # site.addsitedir) or install() puts the hook in and must patch the loaded class at once.
    env = make_env(python_minor, pth=False)
    site_dir = os.path.join(env.path, "site_dir")
    os.makedirs(site_dir)
    shutil.copy(os.path.join(REPO, PTH), site_dir)
    seen, proc = env.report(
        """
        how, site_dir = sys.argv[1:3]
        sys.path[:0] = sys.argv[3:]
        import uvicorn.workers
        cls = uvicorn.workers.UvicornWorker
        assert "uvicorn_usr1_patch" not in sys.modules and "uvicorn_usr1_patch_hook" not in sys.modules
        if how == "pth":
            import site
            site.addsitedir(site_dir)
        else:
            import uvicorn_usr1_patch
            uvicorn_usr1_patch.install()
        from uvicorn_usr1_patch import worker_patch
        report(patched=worker_patch.is_patched(cls), handler=run_worker(cls), calls=cls.calls)
        """,
        how,
        site_dir,
        STARTUP_FAKES,
        env.site_packages,
        flags=["-S"],
    )
    assert seen == dict(seen, patched=True, handler="LoopReopen", calls=1)
    assert seen["finders"] == [FINDER]
    assert proc.stderr == ""


def _one_warning(stderr, *needles):
    """stderr holds exactly one UvicornUSR1PatchWarning, naming every needle, and nothing else."""
    assert stderr.count("UvicornUSR1PatchWarning") == 1, stderr
    warning_lines = [line for line in stderr.splitlines() if "UvicornUSR1PatchWarning" in line]
    for needle in needles:
        assert needle in warning_lines[0], stderr
    # The warning line plus, at most, the source line that `warnings` shows under it.
    assert len(stderr.splitlines()) <= 2, stderr


@pytest.mark.parametrize("flags", [[], ["-W", "always"]], ids=["default-filters", "W-always"])
@pytest.mark.parametrize("python_minor", [OLDEST, NEWEST])
def test_a_broken_wrapt_does_not_matter(python_minor, flags, make_env):
    """The package patches with plain functions (uvicorn_usr1_patch/patching.py) and needs no
    wrapt: one that cannot be imported changes nothing, where it once skipped the patch."""
    env = make_env(python_minor)
    seen, proc = env.report(
        """
        import uvicorn.workers
        import uvicorn_usr1_patch
        uvicorn_usr1_patch.install()
        from uvicorn_usr1_patch import worker_patch
        cls = uvicorn.workers.UvicornWorker
        report(patched=worker_patch.is_patched(cls), handler=run_worker(cls), calls=cls.calls,
               wrapt="wrapt" in sys.modules)
        """,
        pythonpath=[BROKEN_WRAPT, STARTUP_FAKES],
        flags=flags,
    )
    assert proc.stderr == ""
    assert seen == dict(seen, patched=True, handler="LoopReopen", calls=1, wrapt=False)


@pytest.mark.parametrize("flags", [[], ["-W", "always"]], ids=["default-filters", "W-always"])
@pytest.mark.parametrize("python_minor", [OLDEST, NEWEST])
def test_workers_module_without_uvicornworker_gives_one_warning(python_minor, flags, make_env):
    env = make_env(python_minor)
    seen, proc = env.report(
        """
        import uvicorn.workers
        import uvicorn_usr1_patch
        uvicorn_usr1_patch.install()
        report(names=sorted(n for n in vars(uvicorn.workers) if not n.startswith("_")))
        """,
        pythonpath=[UVICORN_WITHOUT_WORKER],
        flags=flags,
    )
    _one_warning(proc.stderr, "skipped uvicorn.workers", "no UvicornWorker")
    assert seen["names"] == ["SomeOtherWorker"]


IMPORT_STYLES = {
    "import": "import uvicorn.workers\ncls = uvicorn.workers.UvicornWorker",
    "from-import": "from uvicorn.workers import UvicornWorker as cls",
    # gunicorn's util.load_class for `-k uvicorn.workers.UvicornWorker` and worker_class in a conf
    "import_module": "import importlib\n"
    "cls = getattr(importlib.import_module('uvicorn.workers'), 'UvicornWorker')",
    "user-subclass": "import myworkers\ncls = myworkers.MyWorker",
}


@pytest.mark.parametrize("style", sorted(IMPORT_STYLES))
@pytest.mark.parametrize("python_minor", [OLDEST, NEWEST])
def test_uvicornworker_is_patched_however_it_is_imported(python_minor, style, make_env):
    env = make_env(python_minor)
    seen, proc = env.report(
        IMPORT_STYLES[style]
        + """
import uvicorn.workers
from uvicorn_usr1_patch import worker_patch
base = uvicorn.workers.UvicornWorker
report(patched=worker_patch.is_patched(base), handler=run_worker(cls), calls=base.calls, name=cls.__name__)
""",
        pythonpath=[STARTUP_FAKES],
    )
    assert seen == dict(seen, patched=True, handler="LoopReopen", calls=1)
    assert proc.stderr == ""


@pytest.mark.parametrize("python_minor", [OLDEST, NEWEST])
def test_python_dash_m_start(python_minor, make_env, tmp_path):
    # `python -m gunicorn ...` style: a -m entry point that loads the worker class by its dotted name.
    env = make_env(python_minor)
    main = PROBE + textwrap.dedent(
        """
        import importlib
        module, _, name = sys.argv[1].rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        from uvicorn_usr1_patch import worker_patch
        report(patched=worker_patch.is_patched(cls), handler=run_worker(cls), argv=sys.argv[1:])
        """
    )
    server = tmp_path / "server" / "fakeserver"
    server.mkdir(parents=True)
    (server / "__init__.py").write_text("")
    (server / "__main__.py").write_text(main)
    args = ("-m", "fakeserver", "uvicorn.workers.UvicornWorker")
    proc = env.run(None, *args, pythonpath=[str(tmp_path / "server"), STARTUP_FAKES])
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    seen = json.loads(proc.stdout.splitlines()[-1])
    assert seen == dict(seen, patched=True, handler="LoopReopen", argv=["uvicorn.workers.UvicornWorker"])
    assert seen["finders"] == [FINDER]


NORMAL_IMPORTS = r"""
import importlib, importlib.util, zipfile, os
results = {}
for name in ["asyncio", "json", "decimal", "sqlite3", "xml.etree.ElementTree", "email.mime.text",
             "concurrent.futures", "fake_gunicorn_base", "uvicorn", "collections.abc"]:
    results[name] = importlib.import_module(name).__name__
# A module from a zip file (zipimport's loader), a namespace package, a relative import.
zpath = os.path.join(sys.argv[1], "zipped.zip")
with zipfile.ZipFile(zpath, "w") as z:
    z.writestr("zipped_mod.py", "VALUE = 42\n")
    z.writestr("relpkg/__init__.py", "from .inner import VALUE\n")
    z.writestr("relpkg/inner.py", "VALUE = 7\n")
sys.path.insert(0, zpath)
import zipped_mod, relpkg
os.makedirs(os.path.join(sys.argv[1], "nspkg"), exist_ok=True)
with open(os.path.join(sys.argv[1], "nspkg", "mod.py"), "w") as f:
    f.write("VALUE = 3\n")
sys.path.insert(0, sys.argv[1])
import nspkg.mod
results["zip"], results["relative"], results["namespace"] = zipped_mod.VALUE, relpkg.VALUE, nspkg.mod.VALUE
errors = {}
for name in ["uvicorn_worker", "no_such_module_xyz", "uvicorn.no_such"]:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        errors[name] = "{}: {}".format(type(exc).__name__, exc)
results["spec"] = importlib.util.find_spec("uvicorn.workers").name
report(results=results, errors=errors)
"""


@pytest.mark.parametrize("python_minor", [OLDEST, NEWEST])
def test_the_hook_does_not_change_other_imports(python_minor, make_env, tmp_path):
    # Same program with the hook and without the .pth: the same modules, the same errors.
    outcomes = []
    for pth in (True, False):
        env = make_env(python_minor, pth=pth)
        scratch = tmp_path / "scratch{}".format(int(pth))
        scratch.mkdir()
        seen, proc = env.report(NORMAL_IMPORTS, str(scratch), pythonpath=[STARTUP_FAKES])
        assert proc.stderr == ""
        assert seen["finders"] == ([FINDER] if pth else [])
        outcomes.append((seen["results"], seen["errors"]))
    assert outcomes[0] == outcomes[1]
    results, errors = outcomes[0]
    assert (results["zip"], results["relative"], results["namespace"]) == (42, 7, 3)
    assert errors["uvicorn_worker"] == "ModuleNotFoundError: No module named 'uvicorn_worker'"


ZIPPED_UVICORN = r"""
import zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("fake_gunicorn_base.py", sys.argv[2])
    z.writestr("uvicorn/__init__.py", "")
    z.writestr("uvicorn/workers.py", sys.argv[3])
sys.path.insert(0, sys.argv[1])
import uvicorn.workers
from uvicorn_usr1_patch import install, worker_patch
cls = uvicorn.workers.UvicornWorker
on_import = worker_patch.is_patched(cls)
install()  # idempotent: still one layer
report(on_import=on_import, after_install=worker_patch.is_patched(cls), layers=layers(cls))
"""


@pytest.mark.parametrize("python_minor", [OLDEST, NEWEST])
def test_uvicorn_imported_from_a_zip(python_minor, make_env, tmp_path):
    # zipimport has exec_module only from 3.10 on; the hook's own loader runs the zipimporter's
    # get_code before that, so a zipped uvicorn is patched on import on every Python.
    env = make_env(python_minor)
    base, workers = _fake_source("fake_gunicorn_base.py"), _fake_source(os.path.join("uvicorn", "workers.py"))
    seen, proc = env.report(ZIPPED_UVICORN, str(tmp_path / "uvicorn.zip"), base, workers)
    assert (seen["on_import"], seen["after_install"], seen["layers"]) == (True, True, 1)
    assert proc.stderr == ""


# A damaged start-up module behind the .pth (a half-upgraded or hand-edited install): the .pth
# line must stay silent whatever the module raises, at import or in startup() (issue 9).
DAMAGED_HOOKS = {
    "RuntimeError at import": "raise RuntimeError('damaged on purpose')\n",
    "SyntaxError": "def startup(:\n",
    "ImportError inside": "import uvicorn_usr1_patch_no_such_module\n",
    "startup() raises": "def startup():\n    raise ValueError('damaged on purpose')\n",
    "no startup()": "x = 1\n",
}


@pytest.mark.parametrize("damage", sorted(DAMAGED_HOOKS))
@pytest.mark.parametrize("python_minor", [OLDEST, NEWEST])
def test_damaged_hook_module_is_silent(python_minor, damage, make_env):
    env = make_env(python_minor)
    hook = os.path.join(env.site_packages, "uvicorn_usr1_patch_hook.py")
    with open(hook, "w") as f:
        f.write(DAMAGED_HOOKS[damage])
    for flags in ([], ["-W", "error"]):
        proc = env.run(None, "-c", "print('program ran')", flags=flags)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "program ran\n", ""), (flags, proc.stderr)
