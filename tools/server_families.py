"""Group plain uvicorn's releases (0.14.0 to the newest) by the code the plain-uvicorn patch
touches, so that one tested release per family stands for all of it.

    python -m tools.server_families            # one line per release: version, family
    python -m tools.server_families --check    # exit 1 when a release is in no known family

The code is that of the methods server_patch and supervisor_patch wrap or extend:
Server.serve (uvicorn/server.py), Multiprocess.startup or, from 0.30, Multiprocess's signal
queue (handle_signals and the module's SIGNALS) (uvicorn/supervisors/multiprocess.py), and
BaseReload.startup (uvicorn/supervisors/basereload.py; statreload, watchfilesreload and
watchgodreload inherit it in every release here). Each release's wheel is fetched and cached
as tools/make_patches.py does (`pip download --no-deps`); a family is the sha256 of those
method sources together. A new release with new code stops --check: read it, test it, and add
it to FAMILIES.
"""

import argparse
import ast
import collections
import concurrent.futures
import hashlib
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tools import make_patches, venvs  # noqa: E402

OLDEST = "0.14.0"
# (file, class, methods): the code the patch depends on; a missing method hashes as absent.
PATCHED = [
    ("uvicorn/server.py", "Server", ("serve",)),
    ("uvicorn/supervisors/multiprocess.py", "Multiprocess", ("startup", "handle_signals")),
    ("uvicorn/supervisors/basereload.py", "BaseReload", ("startup",)),
]

Family = collections.namedtuple("Family", "name tested python extra")
# sha256 of the patched methods' sources -> family. `tested` is the release tests/test_plain.py
# runs for it, on Python `python`, with uvicorn[standard] and `extra` requirements.
FAMILIES = {
    "254801a45f2c261dafdbf6186cebeb1ac05d3c88db8dda0a27b7a39d69d722f7": Family(
        # the package's oldest Python too; uvloop 0.14 as in the report (uvloop >= 0.18 has no
        # current loop for 0.14's Server.run, which calls asyncio.get_event_loop)
        "0.14.0",
        "0.14.0",
        "3.6",
        ("uvloop==0.14.0",),
    ),
    "8d98a9c45c03cb23a66f34a2a109f58481059e47ddda292e2d1d349f5fcd8087": Family(
        "0.15.0-0.21.1", "0.21.1", "3.10", ()
    ),
    "e26d91bf69ba4e931a50b4c96758f490d538f7f91aef334bf788dd59a20ff5f4": Family(
        "0.22.0-0.25.0", "0.25.0", "3.11", ()
    ),
    "54232b7133a5c921075c0e964aa11e5ff52cdcb30b37d94af380408fcdea0fd1": Family(
        "0.26.0-0.27.1", "0.27.1", "3.11", ()
    ),
    "14de12c9ae60f5f4e6ce3c337fdd4c29395ee081722b17197463041fd620b802": Family(
        "0.28.0-0.28.1", "0.28.1", "3.12", ()
    ),
    # capture_signals (signal.signal, restored after serve) instead of install_signal_handlers
    "d58635f6dd25849ab8a0d357738bac8ab9cb2a333fb9cd0246cc8da639d3e867": Family(
        "0.29.0", "0.29.0", "3.11", ()
    ),
    # Multiprocess with a signal queue, process objects and handle_<signal> methods
    "4664af8cffaae5516d25e0a89f84865b0ff3904f6496089bdd314621628225a2": Family(
        "0.30.0-0.49.0", "0.49.0", "3.12", ()
    ),
    "ef2fbd9a95c5a6d1d27643fbceb372e7f85af05333b114d4a9f626b3af01373f": Family(
        "0.50.0-0.54.0", "0.54.0", "3.12", ()
    ),
}


def method_sources(source, class_name, names):
    """{name: source text} of the methods of `class_name` in `source` (None when absent)."""
    tree = ast.parse(source)
    found = dict.fromkeys(names)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in names:
                    found[item.name] = ast.get_source_segment(source, item)
    return found


def signals_take_usr1(source):
    """The 0.30+ queue: a module-level SIGNALS (built from a string that names USR1)."""
    return "\nSIGNALS = {" in source and "USR1" in source


def fingerprint(wheel):
    """(sha256 of the patched code, supervisor shape) of one release's wheel."""
    digest = hashlib.sha256()
    shape = None
    for path, class_name, names in PATCHED:
        data = make_patches.read_member(wheel, path)
        source = data.decode("utf-8") if data is not None else ""
        for name, text in sorted(method_sources(source, class_name, names).items()):
            digest.update("{}:{}.{}\0{}\0".format(path, class_name, name, text).encode())
        if class_name == "Multiprocess":
            queue = signals_take_usr1(source)
            digest.update(b"SIGNALS has USR1" if queue else b"no signal queue")
            shape = "queue" if queue else "wait"
    return digest.hexdigest(), shape


def survey(jobs=4):
    """[(version, sha256, shape)] for every release from OLDEST on (downloads once, then cache)."""
    python = venvs.ensure(make_patches.DOWNLOADER[0], make_patches.DOWNLOADER[1], with_patch=False).python
    versions = [
        v
        for v in make_patches.pypi_versions()
        if make_patches.version_key(v) >= make_patches.version_key(OLDEST)
    ]

    def one(version):
        wheel = make_patches._download(python, version, "wheel")
        if wheel is None:
            raise RuntimeError("PyPI has no wheel of uvicorn " + version)
        return (version,) + fingerprint(wheel)

    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(one, versions))


def families(releases):
    """{sha256: [versions]} in release order."""
    grouped = collections.OrderedDict()
    for version, sha, _ in releases:
        grouped.setdefault(sha, []).append(version)
    return grouped


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a release is in no known family")
    args = parser.parse_args(argv)
    releases = survey()
    unknown = []
    for sha, versions in families(releases).items():
        family = FAMILIES.get(sha)
        span = versions[0] if len(versions) == 1 else "{}-{}".format(versions[0], versions[-1])
        shape = next(s for v, h, s in releases if h == sha)
        if family is None:
            unknown.append(span)
            print("{:<14} UNKNOWN {} ({} releases, --workers: {})".format(span, sha, len(versions), shape))
            continue
        print(
            "{:<14} family {:<14} tested on {} (Python {}); {} releases; --workers: {}".format(
                span, family.name, family.tested, family.python, len(versions), shape
            )
        )
        if not set(versions) >= {family.tested}:
            unknown.append(span)
    if unknown and args.check:
        print("releases in no known family (read them, test one, add to FAMILIES): " + ", ".join(unknown))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
