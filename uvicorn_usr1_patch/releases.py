"""The release families: what a gunicorn worker's own init_signals does with SIGUSR1.

One vocabulary for the doctor, `check`, the tests, the bench and the tools, and one version key.
Stdlib only and Python 3.6 compatible: the doctor imports it in any environment.

- "pass"  uvicorn 0.4.0-0.13.2: `UvicornWorker.init_signals` is `pass`, so the worker keeps every
          Python handler of gunicorn's master; USR1 reaches the master's handler and the worker
          never reopens its logs (encode/uvicorn#894).
- "reset" uvicorn 0.13.3-0.18.3: gunicorn's signals are reset to SIG_DFL (encode/uvicorn#895), so
          USR1 kills the worker and gunicorn boots another (encode/uvicorn#1565).
- "sync"  uvicorn 0.19.0+ and the uvicorn-worker package: `signal.signal(SIGUSR1, handle_usr1)`
          (encode/uvicorn#1565): the reopen runs inside the signal handler, in the middle of
          whatever code was running (gunicorn#2564: reentrant call inside BufferedWriter).
- "asgi"  gunicorn's own ASGI worker (24.0.0+, gunicorn/workers/gasgi.py): USR1 through
          loop.add_signal_handler, an ordinary event-loop callback.
And what this package installs in place of the first three: "deferred" (the handler only sets a
flag; the reopen runs on the event loop).
"""

import collections
import re
import signal

PASS = "pass"
RESET = "reset"
SYNC = "sync"
ASGI = "asgi"
DEFERRED = "deferred"
UNKNOWN = "unknown"

Family = collections.namedtuple("Family", "name first last usr1")

FAMILIES = collections.OrderedDict(
    (f.name, f)
    for f in (
        Family(PASS, "0.4.0", "0.13.2", "USR1 ignored: the worker keeps writing into the rotated file"),
        Family(
            RESET,
            "0.13.3",
            "0.18.3",
            "USR1 kills the worker: gunicorn respawns it, in-flight requests are dropped",
        ),
        Family(
            SYNC, "0.19.0", None, "synchronous reopen inside the signal handler: `Logging error` under load"
        ),
        Family(ASGI, None, None, "gunicorn's ASGI worker: the reopen runs on the event loop"),
    )
)

# One line per outcome, as the doctor prints it.
DESCRIPTIONS = {
    PASS: FAMILIES[PASS].usr1 + " (uvicorn 0.4-0.13.2)",
    RESET: FAMILIES[RESET].usr1 + " (0.13.3-0.18.3)",
    SYNC: FAMILIES[SYNC].usr1 + " (0.19+)",
    ASGI: FAMILIES[ASGI].usr1,
    DEFERRED: "loop-safe: the reopen runs on the event loop",
    UNKNOWN: "unknown",
}


def version_key(version):
    """'0.17.0.post1' -> (0, 17, 0, 1), '3.10' -> (3, 10): enough for uvicorn's and Python's numbers."""
    return tuple(int(p) for p in re.findall(r"\d+", version))


def family_of(uvicorn_version):
    """The family of a uvicorn release's UvicornWorker; None before 0.4.0 (USR1 went through the loop)."""
    key = version_key(uvicorn_version)
    if key < version_key(FAMILIES[PASS].first):
        return None
    if key < version_key(FAMILIES[RESET].first):
        return PASS
    if key < version_key(FAMILIES[SYNC].first):
        return RESET
    return SYNC


def usr1_outcome(handler, worker, inherited):
    """Which family's init_signals leaves SIGUSR1 with `handler` in `worker` (or DEFERRED, UNKNOWN).

    `inherited(handler)` tells whether it is gunicorn's master's handler, kept from the fork.
    """
    if handler == signal.SIG_DFL:
        return RESET
    if inherited(handler):
        return PASS
    if type(handler).__name__ == "LoopReopen":
        return DEFERRED
    if getattr(handler, "__self__", None) is worker:
        return SYNC
    return UNKNOWN
