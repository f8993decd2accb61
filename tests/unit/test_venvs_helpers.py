"""tools/venvs.py's helpers that need no venv: pyenv's Pythons, the wheel's key, the locks,
and the permission fixes of the shared tree (on a tree made here)."""

import os
import stat

import pytest

from tools import venvs


@pytest.fixture
def fake_pyenv(tmp_path, monkeypatch):
    for version in ["3.8.1", "3.8.18", "3.10.2", "3.9.0", "3.13.0", "2.7.18"]:
        binary = tmp_path / "versions" / version / "bin" / "python"
        binary.parent.mkdir(parents=True)
        binary.write_text("")
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    return tmp_path


def test_pyenv_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    assert venvs.pyenv_root() == str(tmp_path)


def test_pythons_keeps_the_newest_patch_release_of_each_minor(fake_pyenv):
    found = venvs.pythons()
    assert sorted(found) == ["3.10", "3.13", "3.8", "3.9"]  # no 2.7: only 3.x
    assert found["3.8"] == str(fake_pyenv / "versions" / "3.8.18" / "bin" / "python")  # 3.8.18 > 3.8.1
    assert venvs.python("3.10").endswith("3.10.2/bin/python")
    assert venvs.python("3.7") is None


def test_require_python_names_the_command_that_installs_it(fake_pyenv):
    assert venvs.require_python("3.9").endswith("3.9.0/bin/python")
    with pytest.raises(LookupError) as err:
        venvs.require_python("3.7")
    assert "pyenv install 3.7" in str(err.value)
    assert "--install-pythons" in str(err.value)


def test_wheel_inputs_are_the_packaged_files():
    inputs = venvs._wheel_inputs()
    for needed in [
        "setup.py",
        "setup.cfg",
        "pyproject.toml",
        "uvicorn_usr1_patch.pth",
        "uvicorn_usr1_patch_hook.py",
    ]:
        assert needed in inputs
    assert "uvicorn_usr1_patch/__init__.py" in inputs
    assert any(i.startswith("patches/uvicorn-") for i in inputs)
    assert not any(i.startswith(("tests/", "tools/", "docs/")) for i in inputs)
    assert "README.md" not in inputs  # metadata only: a README edit rebuilds no venv


def test_sources_digest_is_stable_and_short():
    assert venvs._sources_digest() == venvs._sources_digest()
    assert len(venvs._sources_digest()) == 16


def test_locked_makes_its_lock_file(tmp_path):
    target = str(tmp_path / "deep" / "venv")
    with venvs._locked(target):
        assert os.path.exists(target + ".lock")
    with venvs._locked(target):  # released: a second holder gets it
        pass


def test_venv_paths():
    venv = venvs.Venv("/x/venv", env={"A": "1"})
    assert venv.python == "/x/venv/bin/python" and venv.bin == "/x/venv/bin"
    assert venv.env == {"A": "1"}
    assert repr(venv) == "Venv('/x/venv')"


def test_read_only_for_others_and_the_problems_it_clears(tmp_path):
    root = tmp_path / "shared"
    (root / "sub").mkdir(parents=True)
    f = root / "sub" / "file"
    f.write_text("x")
    os.chmod(str(f), 0o666)
    os.chmod(str(root / "sub"), 0o777)
    os.symlink(str(f), str(root / "link"))
    if os.getuid() == 0:
        assert len(venvs.shared_tree_problems(str(root))) == 2
    venvs._make_read_only_for_others(str(root))
    assert stat.S_IMODE(os.stat(str(f)).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(str(root / "sub")).st_mode) == 0o755
    if os.getuid() == 0:
        assert venvs.shared_tree_problems(str(root)) == []
