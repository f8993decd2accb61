"""tools/make_patches.py's pure helpers: hunk ranges, the diff writer, the import block, the
affected test and reading members of wheels and sdists (made here, in tmp). The transformation
of workers.py itself is tests/test_patches.py's (e2e: it needs the PyPI files)."""

import difflib
import io
import subprocess
import tarfile
import zipfile

import pytest

from tools import make_patches


@pytest.mark.parametrize(
    "start, stop, text",
    [(0, 0, "0,0"), (4, 4, "4,0"), (0, 1, "1"), (9, 10, "10"), (0, 3, "1,3"), (10, 17, "11,7")],
)
def test_hunk_range_is_difflibs(start, stop, text):
    assert make_patches._hunk_range(start, stop) == text


def lines(*items):
    return [i + "\n" for i in items]


def test_unified_diff_headers_and_hunks():
    old = lines("a", "b", "c", "d", "e", "f", "g", "h")
    new = lines("a", "b", "c", "d", "X", "f", "g", "h")
    out = make_patches.unified_diff(old, new)
    assert out[:2] == ["--- a/uvicorn/workers.py\n", "+++ b/uvicorn/workers.py\n"]
    assert out[2] == "@@ -2,7 +2,7 @@\n"
    assert "-e\n" in out and "+X\n" in out
    assert out[3:] == list(difflib.unified_diff(old, new, n=3))[3:]


def test_unified_diff_of_equal_files_is_only_the_header():
    same = lines("a", "b")
    assert make_patches.unified_diff(same, same) == [
        "--- a/uvicorn/workers.py\n",
        "+++ b/uvicorn/workers.py\n",
    ]


def test_unified_diff_keeps_repeated_blank_lines_of_a_long_file():
    # autojunk would take blank lines (over 1% of 200+ lines) for junk and remove/re-add one
    old = []
    for n in range(150):
        old += ["def f{}():\n".format(n), "    pass\n", "\n"]
    new = old[:60] + ["# inserted\n", "\n"] + old[60:]
    out = make_patches.unified_diff(old, new)
    assert [line for line in out if line.startswith("-") and not line.startswith("---")] == []
    added = [line for line in out if line.startswith("+") and not line.startswith("+++")]
    assert sorted(added) == ["+\n", "+# inserted\n"]


def test_unified_diff_applies_with_patch(tmp_path):
    old = lines(
        "import os", "", "class UvicornWorker(Worker):", "    def init_signals(self):", "        pass"
    )
    new = list(old)
    new[4] = "        install_worker_signals(self)\n"
    (tmp_path / "uvicorn").mkdir()
    target = tmp_path / "uvicorn" / "workers.py"
    target.write_text("".join(old))
    diff = "".join(make_patches.unified_diff(old, new))
    run = subprocess.run(
        ["patch", "-p1", "--forward"],
        input=diff,
        cwd=str(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        universal_newlines=True,
    )
    assert run.returncode == 0, run.stdout
    assert "offset" not in run.stdout and "fuzz" not in run.stdout
    assert target.read_text() == "".join(new)


def test_add_stdlib_imports_merges_into_the_leading_block():
    source = lines("import asyncio", "import signal", "", "from gunicorn.workers.base import Worker")
    out = make_patches._add_stdlib_imports(source, ("os", "signal", "errno"))
    assert out == lines(
        "import asyncio",
        "import errno",
        "import os",
        "import signal",
        "",
        "from gunicorn.workers.base import Worker",
    )


def test_add_stdlib_imports_starts_a_block_when_there_is_none():
    source = lines("from gunicorn.workers.base import Worker")
    out = make_patches._add_stdlib_imports(source, ("sys", "os"))
    assert out == lines("import os", "import sys", "", "from gunicorn.workers.base import Worker")


def test_add_stdlib_imports_stops_at_a_non_stdlib_import():
    source = lines("import os", "import uvloop", "import sys")
    out = make_patches._add_stdlib_imports(source, ("errno",))
    assert out == lines("import errno", "import os", "import uvloop", "import sys")


@pytest.mark.parametrize(
    "source, affected",
    [
        (None, False),
        (b"", False),
        (b"class UvicornWorker(Worker):\n    def init_signals(self):\n        pass\n", True),
        (b"class UvicornWorker(Worker):\n    signal.signal(signal.SIGUSR1, self.handle_usr1)\n", False),
        (b"class OtherWorker(Worker):\n    pass\n", False),
    ],
)
def test_is_affected(source, affected):
    assert make_patches.is_affected(source) is affected


def make_wheel(path, members):
    with zipfile.ZipFile(str(path), "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return str(path)


def make_sdist(path, members):
    with tarfile.open(str(path), "w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("uvicorn-0.1/docs/uvicorn")
        info.type = tarfile.DIRTYPE
        t.addfile(info)
    return str(path)


def test_read_member_of_a_wheel_takes_the_shortest_match(tmp_path):
    wheel = make_wheel(
        tmp_path / "uvicorn-0.1-py3-none-any.whl",
        {
            "uvicorn/workers.py": b"top",
            "tests/uvicorn/workers.py": b"deeper",
            "x/nouvicorn/workers.py": b"no",
        },
    )
    assert make_patches.read_member(wheel, "uvicorn/workers.py") == b"top"
    assert make_patches.read_member(wheel, "uvicorn/missing.py") is None


def test_read_member_of_an_sdist(tmp_path):
    sdist = make_sdist(
        tmp_path / "uvicorn-0.1.tar.gz",
        {"uvicorn-0.1/uvicorn/workers.py": b"pristine", "uvicorn-0.1/PKG-INFO": b"Name: uvicorn\n"},
    )
    assert make_patches.read_member(sdist, "uvicorn/workers.py") == b"pristine"
    assert make_patches.read_member(sdist, "PKG-INFO") == b"Name: uvicorn\n"
    assert make_patches.read_member(sdist, "uvicorn") is None  # a directory is no member


def test_supported_pythons_from_wheel_metadata_and_sdist_pkg_info(tmp_path):
    metadata = (
        b"Metadata-Version: 2.1\nName: uvicorn\n"
        b"Classifier: Programming Language :: Python :: 3.10\n"
        b"Classifier: Programming Language :: Python :: 3.8\n"
        b"Classifier: Programming Language :: Python :: 3 :: Only\n"
        b"Classifier: Programming Language :: Python :: 3.8\n"
    )
    wheel = make_wheel(tmp_path / "u-0.1-py3-none-any.whl", {"uvicorn-0.1.dist-info/METADATA": metadata})
    sdist = make_sdist(tmp_path / "u-0.1.tar.gz", {"uvicorn-0.1/PKG-INFO": metadata})
    assert make_patches.supported_pythons(wheel) == ["3.8", "3.10"]
    assert make_patches.supported_pythons(sdist) == ["3.8", "3.10"]


def test_every_known_workers_file_is_of_an_affected_family():
    names = [f.name for f in make_patches.WORKERS_FILES.values()]
    assert len(names) == len(set(names)) == 17
    assert {f.family for f in make_patches.WORKERS_FILES.values()} == {make_patches.PASS, make_patches.RESET}
    assert all(len(sha) == 64 and int(sha, 16) >= 0 for sha in make_patches.WORKERS_FILES)
