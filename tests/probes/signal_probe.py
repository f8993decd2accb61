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

# The families' one vocabulary (pass, reset, sync, deferred) for what USR1 does, loaded by path:
# the probe also runs in venvs without this package (tests/test_patches.py's pristine stacks).
_RELEASES = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "uvicorn_usr1_patch", "releases.py"
)
_spec = importlib.util.spec_from_file_location("uvicorn_usr1_patch_releases", _RELEASES)
releases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(releases)


# The signals of the README's table: gunicorn's master handles each of them.
TABLE_SIGNALS = ["SIGQUIT", "SIGINT", "SIGTERM", "SIGABRT", "SIGHUP", "SIGUSR1", "SIGUSR2"]
TABLE_SIGNALS += ["SIGWINCH", "SIGTTIN", "SIGTTOU", "SIGCHLD"]


class ProbeApp(BaseApplication):
    def load_config(self):
        self.cfg.set("bind", "127.0.0.1:0")

    def load(self):
        return None


def from_master(handler):
    return isinstance(getattr(handler, "__self__", None), Arbiter)


def describe(handler, worker):
    """One signal's handler, for the signal table: default, ignored, master, sync, deferred,
    worker.handle_*, nothing (or its repr). What USR1 does is named by its family instead."""
    owner = getattr(handler, "__self__", None)
    if handler == signal.SIG_DFL:
        return "default"  # for USR1: the worker is killed
    if handler == signal.SIG_IGN:
        return "ignored"
    if isinstance(owner, Arbiter):
        return "master"  # inherited: for USR1, the reopen never happens in the worker
    if owner is worker and getattr(handler, "__name__", "") == "handle_usr1":
        return "sync"  # reopens inside the signal handler
    if type(handler).__name__ == "LoopReopen":
        return "deferred"
    if type(handler).__name__ == "QuickExit":
        return "quick exit"  # uvicorn's quick shutdown from the loop; gunicorn's handle_quit without one
    name = getattr(handler, "__name__", "")
    if owner is worker and name in ("handle_quit", "handle_abort", "handle_exit", "handle_winch"):
        return "worker." + name  # gunicorn's own worker handler
    if name == "do_nothing":
        return "nothing"
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
    report["signals"] = {
        name: describe(signal.getsignal(getattr(signal, name)), worker) for name in TABLE_SIGNALS
    }
    report["sigchld"] = report["signals"]["SIGCHLD"]

    handler = signal.getsignal(signal.SIGUSR1)
    if report["usr1"] == releases.DEFERRED:
        calls = []  # reopens, counted from here on
        handler.reopen = lambda: calls.append(1)  # LoopReopen's work, in the package and the diffs
        # No loop running yet: remembered, never done inside the signal handler...
        os.kill(os.getpid(), signal.SIGUSR1)
        report["calls_without_loop"] = len(calls)

        loop, report["loop"] = new_loop(worker)

        async def first_tick():
            # ...and done at the first safe point: uvicorn's first loop tick calls
            # callback_notify (which calls worker.notify).
            await worker.callback_notify()
            for _ in range(3):
                await asyncio.sleep(0)
            return len(calls)

        report["calls_at_first_tick"] = loop.run_until_complete(first_tick())
        del calls[:]

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
        # After the loop has ended (the worker is exiting): dropped, with a line on stderr.
        os.kill(os.getpid(), signal.SIGUSR1)
        report["calls_after_loop_ended"] = len(calls)

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
