"""Only what setup.cfg cannot do: put uvicorn_usr1_patch.pth at the root of site-packages.

setup.cfg's data_files would land the .pth under the environment prefix, where `site`
never reads it. So the .pth is added to build_lib (wheels, `pip install .`, sdists through
MANIFEST.in), to the wheel that a PEP 660 editable install builds (setuptools 64+), and to
the install dir of a legacy `setup.py develop` (Python 3.6's pip). The versioned diffs in
patches/ are copied into the package so `python -m uvicorn_usr1_patch diff` finds them.
"""

import base64
import glob
import hashlib
import os
import shutil
import zipfile

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.develop import develop

HERE = os.path.dirname(os.path.abspath(__file__))
PTH = "uvicorn_usr1_patch.pth"
PATCHES_IN_PACKAGE = os.path.join("uvicorn_usr1_patch", "patches")


class BuildPyWithPth(build_py):
    def run(self):
        build_py.run(self)
        self.copy_file(os.path.join(HERE, PTH), os.path.join(self.build_lib, PTH))
        target = os.path.join(self.build_lib, PATCHES_IN_PACKAGE)
        self.mkpath(target)
        for diff in self._diffs():
            self.copy_file(diff, os.path.join(target, os.path.basename(diff)))

    def _diffs(self):
        return sorted(glob.glob(os.path.join(HERE, "patches", "*.diff")))

    def get_outputs(self, include_bytecode=1):
        extra = [os.path.join(self.build_lib, PTH)]
        extra += [
            os.path.join(self.build_lib, PATCHES_IN_PACKAGE, os.path.basename(d)) for d in self._diffs()
        ]
        return build_py.get_outputs(self, include_bytecode) + extra

    def get_source_files(self):
        return build_py.get_source_files(self) + [PTH] + [os.path.relpath(d, HERE) for d in self._diffs()]


class DevelopWithPth(develop):
    def run(self):
        develop.run(self)
        # setuptools < 80 only (pip's `-e` on Python 3.6): its develop links the source tree and
        # installs nothing else. From 80 on, develop runs `pip install -e .`, whose editable wheel
        # already carries the .pth, and has neither `uninstall` nor a default install_dir.
        if not hasattr(self, "uninstall") or not self.install_dir:
            return
        installed = os.path.join(self.install_dir, PTH)
        if not self.uninstall:
            self.copy_file(os.path.join(HERE, PTH), installed)
        elif os.path.exists(installed):  # `setup.py develop -u`; `pip uninstall` leaves it (silent)
            os.remove(installed)


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "{},sha256={},{}".format(name, digest, len(data))


def add_pth_to_wheel(wheel_path):
    """Rewrite a built wheel with the .pth at its root and listed in RECORD (idempotent)."""
    with open(os.path.join(HERE, PTH), "rb") as f:
        pth = f.read()
    tmp = wheel_path + ".tmp"
    with zipfile.ZipFile(wheel_path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        names = src.namelist()
        if PTH in names:
            os.remove(tmp)
            return
        record = next(n for n in names if n.endswith(".dist-info/RECORD"))
        for name in names:
            if name == record:
                continue
            dst.writestr(src.getinfo(name), src.read(name))
        dst.writestr(PTH, pth)
        lines = src.read(record).decode().splitlines()
        lines.insert(-1 if lines and lines[-1].startswith(record) else len(lines), _record_line(PTH, pth))
        dst.writestr(src.getinfo(record), "\n".join(lines) + "\n")
    shutil.move(tmp, wheel_path)


cmdclass = {"build_py": BuildPyWithPth, "develop": DevelopWithPth}

try:  # setuptools 64+: PEP 660 editable installs build a wheel through this command
    from setuptools.command.editable_wheel import editable_wheel
except ImportError:
    editable_wheel = None

if editable_wheel is not None:

    class EditableWheelWithPth(editable_wheel):
        def run(self):
            before = set(glob.glob(os.path.join(self.dist_dir, "*.whl")))
            editable_wheel.run(self)
            for wheel in set(glob.glob(os.path.join(self.dist_dir, "*.whl"))) - before:
                add_pth_to_wheel(wheel)

    cmdclass["editable_wheel"] = EditableWheelWithPth

setup(cmdclass=cmdclass)
