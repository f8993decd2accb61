"""python -m uvicorn_usr1_patch diff [VERSION]: print the versioned patch for uvicorn's workers.py.

Without VERSION: the diff for the uvicorn installed here (exit 1, with one line on stderr, when that
release needs no diff or is not one the project has a diff for). With VERSION: that release's
diff, whatever is installed; exit 2 with the list of releases that have one when VERSION has none.
The diffs ship inside the wheel (uvicorn_usr1_patch/patches/); in a source checkout they are
read from the repository's patches/ directory.
"""

import hashlib
import os
import re
import sys

from uvicorn_usr1_patch import releases

HERE = os.path.dirname(os.path.abspath(__file__))
PLACES = (os.path.join(HERE, "patches"), os.path.join(os.path.dirname(HERE), "patches"))


def installed_uvicorn():
    """(version, path of uvicorn/workers.py or None); version None when uvicorn is absent."""
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # Python 3.6/3.7
        from pkg_resources import DistributionNotFound as PackageNotFoundError
        from pkg_resources import get_distribution

        def version(name):
            return get_distribution(name).version

    try:
        found = version("uvicorn")
    except PackageNotFoundError:
        return None, None
    workers = None
    try:
        import importlib.util

        spec = importlib.util.find_spec("uvicorn")
        if spec is not None and spec.origin:
            workers = os.path.join(os.path.dirname(spec.origin), "workers.py")
    except (ImportError, ValueError):
        pass
    return found, workers


def find_diff(version):
    name = "uvicorn-{}.diff".format(version)
    for place in PLACES:
        path = os.path.join(place, name)
        if os.path.exists(path):
            return path
    return None


def expected_sha256(diff_text):
    found = re.search(r"^Expects: .* sha256 ([0-9a-f]{64})$", diff_text, re.M)
    return found.group(1) if found else None


def affected_releases():
    """The uvicorn releases a diff ships for, oldest first."""
    found = set()
    for place in PLACES:
        if os.path.isdir(place):
            for name in os.listdir(place):
                if name.startswith("uvicorn-") and name.endswith(".diff"):
                    found.add(name[len("uvicorn-") : -len(".diff")])
    return sorted(found, key=releases.version_key)


def main(argv):
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print(
            "usage: python -m uvicorn_usr1_patch diff [VERSION] (unexpected: {})".format(" ".join(argv)),
            file=sys.stderr,
        )
        return 2
    if argv:
        return print_release(argv[0])
    version, workers = installed_uvicorn()
    if version is None:
        print("uvicorn is not installed in this environment ({})".format(sys.executable), file=sys.stderr)
        return 1
    path = find_diff(version)
    if path is None:
        family = releases.family_of(version)
        if family == releases.SYNC:  # uvicorn 0.19.0 installs handle_usr1 itself (encode/uvicorn#1565)
            why = "it handles SIGUSR1 itself (0.19.0+); the package's import hook makes that reopen loop-safe"
        elif family is None:
            why = "its worker predates uvicorn 0.4.0's design; no diff is provided"
        else:
            why = "this release is unknown to uvicorn-usr1-patch"
        print("no diff for uvicorn {}: {}".format(version, why), file=sys.stderr)
        return 1
    with open(path) as f:
        text = f.read()
    sys.stdout.write(text)
    expected = expected_sha256(text)
    if workers and expected and os.path.exists(workers):
        with open(workers, "rb") as f:
            actual = hashlib.sha256(f.read()).hexdigest()
        if actual != expected:
            print(
                "note: {} is not the pristine file this diff expects (already patched or edited?)".format(
                    workers
                ),
                file=sys.stderr,
            )
    return 0


def print_release(version):
    """`diff VERSION`: that release's diff, never silently the installed one's."""
    path = find_diff(version)
    if path is None:
        print(
            "no diff for uvicorn {}; releases with one: {}".format(version, ", ".join(affected_releases())),
            file=sys.stderr,
        )
        return 2
    with open(path) as f:
        sys.stdout.write(f.read())
    return 0
