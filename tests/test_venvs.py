"""tools/venvs.py's wheel of this package: one per source state on the machine, whatever the
checkout's path, and built without writing into the checkout."""

import glob
import os
import shutil
import subprocess
import sys
import zipfile

from tools import venvs

CODE = "import sys; sys.path.insert(0, sys.argv[1]); from tools import venvs; print({})"


def _checkout_copy(root):
    """A second checkout: the wheel's inputs and the tools that build it, somewhere else."""
    for name in venvs._wheel_inputs() + venvs.METADATA + ["tools/__init__.py", "tools/venvs.py"]:
        target = os.path.join(root, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(venvs.REPO, name), target)
    return root


def _in(checkout, expression, env=None):
    return subprocess.check_output(
        [sys.executable, "-c", CODE.format(expression), checkout],
        cwd=checkout,
        env=dict(os.environ, **(env or {})),
        universal_newlines=True,
    ).strip()


def test_a_second_checkout_has_the_same_wheel_key(tmp_path):
    other = _checkout_copy(str(tmp_path / "elsewhere" / "uvicorn-usr1-patch"))
    assert _in(other, "venvs._sources_digest()") == venvs._sources_digest()


def test_building_the_wheel_leaves_the_checkout_alone(tmp_path):
    checkout = _checkout_copy(str(tmp_path / "checkout"))
    os.makedirs(os.path.join(checkout, "build"))
    with open(os.path.join(checkout, "build", "mine.txt"), "w") as f:
        f.write("the user's own build/ directory\n")
    before = sorted(os.listdir(checkout))
    # a cache of its own, so that the wheel is really built here
    wheel = _in(checkout, "venvs.wheel()", env={"UVICORN_USR1_PATCH_VENVS": str(tmp_path / "cache")})
    assert sorted(os.listdir(checkout)) == before  # no build/ or *.egg-info made or removed
    assert os.listdir(os.path.join(checkout, "build")) == ["mine.txt"]
    assert not glob.glob(os.path.join(str(tmp_path / "cache"), "wheel-source-*"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert "uvicorn_usr1_patch.pth" in names and "uvicorn_usr1_patch/releases.py" in names
