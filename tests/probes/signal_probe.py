"""Run inside a venv holding real gunicorn + uvicorn: build a worker as gunicorn's master would
and report, as JSON on stdout, what its init_signals leaves behind and how USR1 then behaves.

    python signal_probe.py WORKER_CLASS [--install] [--uninstall-after]

WORKER_CLASS is e.g. uvicorn.workers.UvicornWorker. --install calls uvicorn_usr1_patch.install()
first (for venvs without the .pth); the .pth, when present, has already installed the hook.
"""

import asyncio
import importlib
import importlib.util
import json
import os
import signal
import sys

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

# The families' one vocabulary (pass, reset, sync, deferred), loaded by path: the probe also runs
# in venvs that do not hold this package (tests/test_patches.py's pristine and diffed stacks).
_RELEASES = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "uvicorn_usr1_patch", "releases.py"
)
_spec = importlib.util.spec_from_file_location("uvicorn_usr1_patch_releases", _RELEASES)
releases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(releases)


class ProbeApp(BaseApplication):
    def load_config(self):
        self.cfg.set("bind", "127.0.0.1:0")

    def load(self):
        return None


def from_master(handler):
    return isinstance(getattr(handler, "__self__", None), Arbiter)


def describe(handler):
    """A signal's disposition other than USR1's: default, ignored, master (or the handler's repr)."""
    if handler == signal.SIG_DFL:
        return "default"
    if handler == signal.SIG_IGN:
        return "ignored"
    if from_master(handler):
        return "master"
    return repr(handler)


def new_loop(worker):
    if getattr(worker, "CONFIG_KWARGS", {}).get("loop") == "uvloop":
        try:
            import uvloop

            return uvloop.new_event_loop(), "uvloop"
        except ImportError:
            pass
    return asyncio.new_event_loop(), "asyncio"


def main():
    target = sys.argv[1]
    if "--install" in sys.argv:
        import uvicorn_usr1_patch

        uvicorn_usr1_patch.install()
    module_name, class_name = target.rsplit(".", 1)
    worker_class = getattr(importlib.import_module(module_name), class_name)

    # What gunicorn's master does before it forks: install its handlers, which workers inherit.
    arbiter = Arbiter(ProbeApp())
    arbiter.init_signals()
    master = {s: signal.getsignal(s) for s in range(1, signal.NSIG) if _valid(s)}
    worker = worker_class(1, os.getpid(), [], arbiter.app, 30, arbiter.cfg, arbiter.log)
    worker.init_signals()

    usr1 = releases.usr1_outcome(signal.getsignal(signal.SIGUSR1), worker, from_master)
    report = {"worker": target, "usr1": usr1}
    report["master_handlers_left"] = sorted(
        signal.Signals(s).name for s, h in master.items() if from_master(h) and signal.getsignal(s) == h
    )
    report["sigchld"] = describe(signal.getsignal(signal.SIGCHLD))

    calls = []
    worker.handle_usr1 = lambda sig, frame: calls.append(sig)  # counted from here on
    if report["usr1"] == releases.DEFERRED:
        # No loop running: the reopen happens at once, in the handler.
        os.kill(os.getpid(), signal.SIGUSR1)
        report["calls_without_loop"] = len(calls)
        del calls[:]

        loop, report["loop"] = new_loop(worker)

        async def burst():
            seen = []
            for _ in range(5):  # five signals before the loop gets a turn: one reopen
                os.kill(os.getpid(), signal.SIGUSR1)
            seen.append(len(calls))  # still 0: nothing reopened inside the handler
            for _ in range(3):
                await asyncio.sleep(0)
            seen.append(len(calls))
            os.kill(os.getpid(), signal.SIGUSR1)  # a later signal: a second reopen
            for _ in range(3):
                await asyncio.sleep(0)
            seen.append(len(calls))
            return seen

        report["calls_during_burst"], report["calls_after_burst"], report["calls_after_next"] = (
            loop.run_until_complete(burst())
        )
        loop.close()

    if "--uninstall-after" in sys.argv:
        import uvicorn_usr1_patch
        from uvicorn_usr1_patch import worker_patch

        uvicorn_usr1_patch.uninstall()
        report["patched_after_uninstall"] = worker_patch.is_patched(worker_class)
        report["meta_path_after_uninstall"] = [type(f).__name__ for f in sys.meta_path]
    print(json.dumps(report, sort_keys=True))


def _valid(signum):
    try:
        signal.getsignal(signum)
        return True
    except (ValueError, OSError):
        return False


if __name__ == "__main__":
    main()
