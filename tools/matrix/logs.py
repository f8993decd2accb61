"""Reading what a matrix run left behind: request tags in access/app logs, plain or gzipped."""

import collections
import glob
import gzip
import re

# A request's tag rides in its path (/api/client/t/TAG): uvicorn 0.4-0.8 log the path without the
# query string. The FastAPI app of the report keeps the report's URL and takes it as `&tag=TAG`.
TAG = re.compile(r"(?:tag=|/t/)([A-Za-z0-9_.-]+)")
LOGGING_ERROR = "--- Logging error ---"
BOOTING = "Booting worker with pid"


def _lines(path):
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            return [line.decode("utf-8", "replace") for line in f]
    except OSError:
        return []


def tags_in(path, prefix=""):
    """Counter of request tags in the lines of `path` (plain or .gz) that start with `prefix`."""
    found = collections.Counter()
    for line in _lines(path):
        if line.startswith(prefix):
            match = TAG.search(line)
            if match:
                found[match.group(1)] += 1
    return found


def with_rotated(path):
    """`path` and every rotated copy of it (dateext or numbered, plain or .gz)."""
    return [path] + sorted(set(glob.glob(path + "-*") + glob.glob(path + ".*")))


def count_in_files(paths, needle):
    return sum(line.count(needle) for path in paths for line in _lines(path))
