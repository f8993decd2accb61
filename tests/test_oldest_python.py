"""The package compiles where the affected uvicorn releases run: back to Python 3.6.
(Running there is what the 3.6/3.7 cells of the matrix and the packaging tests show.)"""

import glob
import os
import subprocess

import pytest

from tools import venvs

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "uvicorn_usr1_patch")
COMPILE_ALL = "import sys\nfor path in sys.argv[1:]:\n    compile(open(path).read(), path, 'exec')"


@pytest.mark.parametrize("minor", ["3.6", "3.7"])
def test_package_compiles_on_old_pythons(minor):
    python = venvs.require_python(minor)
    sources = sorted(glob.glob(os.path.join(PACKAGE, "*.py")))
    assert len(sources) >= 5
    out = subprocess.run(
        [python, "-c", COMPILE_ALL] + sources,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        universal_newlines=True,
    )
    assert out.returncode == 0, out.stdout
