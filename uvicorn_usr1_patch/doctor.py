"""python -m uvicorn_usr1_patch [doctor] [--json]: will USR1 reopen logs safely here?

Looks at this environment as gunicorn's master would see it: which worker classes are
installed, what their own init_signals does with SIGUSR1 (tried for real on a stand-in
worker, with every signal handler saved and restored), whether the start-up hook is active
in this interpreter, and so whether workers started from here get the loop-safe reopen.
Also what plain uvicorn (no gunicorn) does with USR1 here; where gunicorn is not installed,
that is the verdict (issue 11). And the gunicorn masters (and uvicorn main processes) running
from this environment that started before uvicorn-usr1-patch was installed: they are not
covered until restarted, and a reload (HUP) is no restart: the master forks its new workers from
the classes it imported before the install. Exit 0 when everything is covered, 1 otherwise.
"""

import glob
import json
import os
import platform
import signal
import site
import sys

import uvicorn_usr1_patch
from uvicorn_usr1_patch import releases

WORKER_CLASSES = [("uvicorn.workers", "UvicornWorker"), ("uvicorn_worker", "UvicornWorker")]


def _version(dist):
    try:
        from importlib.metadata import version
    except ImportError:  # Python < 3.8
        try:
            from pkg_resources import get_distribution

            return get_distribution(dist).version
        except Exception:
            return None
    try:
        return version(dist)
    except Exception:
        return None


def _master_stand_in(signum, frame):
    """Plays the handler a worker inherits from gunicorn's master."""


def try_init_signals(cls, init_signals):
    """Run `init_signals` on a bare instance of `cls`; what does SIGUSR1 do afterwards?"""
    saved = {}
    for signum in range(1, signal.NSIG):
        try:
            saved[signum] = signal.getsignal(signum)
        except (ValueError, OSError):
            pass
    try:
        signal.signal(signal.SIGUSR1, _master_stand_in)
        worker = cls.__new__(cls)  # no __init__: init_signals needs only the class attributes
        init_signals(worker)
        handler = signal.getsignal(signal.SIGUSR1)
        return releases.usr1_outcome(handler, worker, lambda h: h is _master_stand_in)
    except (Exception, SystemExit) as exc:  # the doctor must print its report whatever happens
        return "{} ({}: {})".format(releases.UNKNOWN, type(exc).__name__, exc)
    finally:
        for signum, handler in saved.items():
            if handler is not None:
                try:
                    signal.signal(signum, handler)
                except (ValueError, OSError, TypeError):
                    pass


def find_pth():
    """The installed .pth: in a site dir, or on sys.path (python -S skips site dirs)."""
    dirs = list(getattr(site, "getsitepackages", lambda: [])())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    for directory in dirs + [p for p in sys.path if p]:
        for path in glob.glob(os.path.join(directory, "uvicorn_usr1_patch.pth")):
            return path
    return None


def _import(module_name, class_name):
    """(module or None, failure entry or None): a module that is not installed is no failure.

    Any exception, SystemExit included (a module calling sys.exit() on import), is caught and
    reported: the doctor must always print its report.
    """
    top = module_name.split(".")[0]
    try:
        return __import__(module_name, fromlist=[class_name]), None
    except ImportError as exc:
        missing = getattr(exc, "name", None)
        if missing and missing.split(".")[0] == top:
            return None, None  # not installed here: not a worker class of this environment
        entry = {"class": module_name, "error": "{}: {}".format(type(exc).__name__, exc)}
        if missing:
            entry["missing"] = missing.split(".")[0]
        return None, entry
    except (Exception, SystemExit) as exc:
        what = "{}: {}".format(type(exc).__name__, exc)
        if isinstance(exc, SystemExit):
            what = "sys.exit({!r}) called during the import".format(exc.code)
        return None, {"class": module_name, "error": what}


def inspect_environment():
    hook_active = any(getattr(f, "uvicorn_usr1_patch", False) for f in sys.meta_path)
    report = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "versions": {d: _version(d) for d in ("uvicorn", "gunicorn", "uvicorn-worker")},
        "uvicorn_usr1_patch": uvicorn_usr1_patch.__version__,
        "enabled": uvicorn_usr1_patch.enabled(),
        "pth": find_pth(),
        "hook_active": hook_active,
        "workers": [],
    }
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for module_name, class_name in WORKER_CLASSES:
            module, failure = _import(module_name, class_name)
            if failure is not None:
                report["workers"].append(failure)
            if module is None:
                continue
            cls = getattr(module, class_name, None)
            if not isinstance(cls, type):
                continue
            from uvicorn_usr1_patch import worker_patch

            own = vars(cls).get("init_signals")
            pristine = getattr(own, "__wrapped__", own) if worker_patch.is_patched(cls) else own
            entry = {
                "class": "{}.{}".format(module_name, class_name),
                "unpatched": try_init_signals(cls, pristine) if pristine else releases.UNKNOWN,
                "patched_now": worker_patch.is_patched(cls),
            }
            entry["in_gunicorn_workers"] = try_init_signals(cls, cls.init_signals)
            report["workers"].append(entry)
        report["plain_uvicorn"] = inspect_plain_uvicorn()
    ours = uvicorn_usr1_patch.UvicornUSR1PatchWarning
    report["warnings"] = [str(w.message) for w in caught if issubclass(w.category, ours)]
    report["running"] = running_servers(report["pth"])
    report["ok"], report["next"] = verdict(report)
    return report


# what a plain uvicorn started from here does with USR1 that counts as reopening (PLAIN_BEHAVIOURS)
PLAIN_REOPENS = ("loop-safe", "relays", "uvicorn")


def plain_only(report):
    """True when only plain uvicorn can run here: no UvicornWorker imports, and the only reason is
    that gunicorn is not installed (uvicorn.workers imports it), yet uvicorn's server is there."""
    workers = [w for w in report["workers"] if "unpatched" in w]
    failed = [w for w in report["workers"] if "error" in w]
    plain = [p for p in report.get("plain_uvicorn", []) if "here" in p]
    return bool(plain) and not workers and all(f.get("missing") == "gunicorn" for f in failed)


def _site_dirs():
    dirs = list(getattr(site, "getsitepackages", lambda: [])())
    try:
        import sysconfig

        dirs.append(sysconfig.get_paths()["purelib"])
    except Exception:
        pass
    return set(os.path.realpath(d) for d in dirs)


def running_servers(pth):
    """[{'pid', 'server', 'started_before_install'}]: gunicorn masters and uvicorn main processes
    whose Python runs from this environment's site-packages, read from /proc (never signalled).

    A process whose own site-packages is not this one's, or that cannot be read (another user's),
    is left out: the doctor speaks for this environment only."""
    from uvicorn_usr1_patch import check_target, check_uvicorn, check_verdicts, procfs

    here = _site_dirs()
    found = []
    try:
        pids = sorted(int(name) for name in os.listdir("/proc") if name.isdigit())
    except OSError:
        return found
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            argv = procfs.command_line(pid)
            if check_target._mentions_gunicorn(argv):
                server = "gunicorn"
                parent = procfs.command_line(procfs.parent_pid(pid))
                if check_target.same_program(argv, parent):
                    continue  # a worker (or a USR2 child's worker): its master is listed
            elif check_uvicorn.runs_uvicorn(argv) and not check_uvicorn.is_spawned_child(argv):
                server = "uvicorn"
            else:
                continue
            env = check_verdicts.environment(pid)
        except (OSError, ValueError, IndexError):
            continue
        site_dir = env["site_packages"]
        if not site_dir or os.path.realpath(procfs.in_root(pid, site_dir)) not in here:
            continue
        found.append(
            {
                "pid": pid,
                "server": server,
                "argv": " ".join(argv)[:200],
                "started_before_install": bool(pth) and env["patch_installed_after_start"],
            }
        )
    return found


RESTART = (
    "restart {what} {pids} (not a reload: HUP forks new workers from the classes the master imported "
    "before the install); zero downtime for gunicorn: `kill -USR2 PID`, wait for the new master's "
    "workers, then `kill -TERM PID` of the old master (gunicorn's graceful stop; QUIT is its quick one)"
)


def verdict(report):
    stale = [r for r in report.get("running", []) if r["started_before_install"]]
    ok, next_step = _environment_verdict(report)
    if ok and stale:
        what = "gunicorn master" if all(r["server"] == "gunicorn" for r in stale) else "server"
        return False, RESTART.format(what=what, pids=", ".join(str(r["pid"]) for r in stale))
    return ok, next_step


def _environment_verdict(report):
    workers = [w for w in report["workers"] if "unpatched" in w]
    failed = [w for w in report["workers"] if "error" in w]
    if plain_only(report):
        # uvicorn without gunicorn (issue 11): `uvicorn app:app`, --workers, --reload
        parts = report["plain_uvicorn"]
        if all(p.get("here") in PLAIN_REOPENS for p in parts):
            return True, (
                "nothing: plain uvicorn reopens its logs on USR1 (gunicorn is not installed here); "
                "restart uvicorn once if it was started before the install"
            )
        return False, _why_not_patched(report, "plain uvicorn")
    if not workers:
        for failure in failed:
            missing = failure.get("missing")
            if missing:
                return False, "pip install {} into this environment ({}): {} imports it".format(
                    missing, sys.prefix, failure["class"]
                )
        for failure in failed:
            return False, "fix the import of {} (gunicorn's master fails the same way): {}".format(
                failure["class"], failure["error"]
            )
        return False, "install uvicorn (or uvicorn-worker) in this environment: no UvicornWorker found"
    if all(w["in_gunicorn_workers"] == releases.DEFERRED for w in workers):
        return True, "nothing; restart gunicorn once if it was started before the install"
    return False, _why_not_patched(report, "the worker")


def _why_not_patched(report, what):
    if not report["enabled"]:
        return "unset {} (it turns the patch off)".format(uvicorn_usr1_patch.ENV_VAR)
    if report["warnings"]:
        return "fix what the warning names: " + report["warnings"][0]
    if not report["pth"]:
        return "pip install uvicorn-usr1-patch into this environment ({})".format(sys.prefix)
    if not report["hook_active"]:
        return (
            "the .pth did not run in this interpreter (python -S, or an embedded/frozen Python?): "
            "call uvicorn_usr1_patch.install() from sitecustomize.py or gunicorn.conf.py"
        )
    return "report this: the hook is active but {} was not patched".format(what)


def render(report):
    lines = [
        "Python              {} ({})".format(report["python"], report["executable"]),
    ]
    for dist, version in sorted(report["versions"].items()):
        lines.append("{:<20}{}".format(dist, version or "not installed"))
    lines.append("{:<20}{}".format("uvicorn-usr1-patch", report["uvicorn_usr1_patch"]))
    hook = "active" if report["hook_active"] else "NOT active"
    hook += " (.pth: {})".format(report["pth"] or "not found")
    if not report["enabled"]:
        hook += "; turned off by {}".format(uvicorn_usr1_patch.ENV_VAR)
    lines.append("{:<20}{}".format("start-up hook", hook))
    for worker in report["workers"]:
        if worker.get("missing") == "gunicorn" and plain_only(report):
            lines.append("{:<20}needs gunicorn (not installed): plain uvicorn only".format(worker["class"]))
            continue
        if "error" in worker:
            lines.append("{:<20}import failed: {}".format(worker["class"], worker["error"]))
            continue
        lines.append("worker class        {}".format(worker["class"]))
        for label, key in (
            ("  unpatched         ", "unpatched"),
            ("  in gunicorn here  ", "in_gunicorn_workers"),
        ):
            lines.append(label + releases.DESCRIPTIONS.get(worker[key], worker[key]))
    lines += render_plain_uvicorn(report.get("plain_uvicorn", []))
    for message in report["warnings"]:
        lines.append("warning             " + message)
    ok = (
        "OK: plain uvicorn reopens its logs on USR1, from the event loop"
        if plain_only(report)
        else "OK: USR1 reopens logs safely"
    )
    for running in report.get("running", []):
        lines.append(
            "running {:<12}{} {}".format(
                running["server"],
                running["pid"],
                "started BEFORE uvicorn-usr1-patch was installed: NOT covered until restarted"
                if running["started_before_install"]
                else "covered (started after the install)",
            )
        )
    lines.append("verdict             " + (ok if report["ok"] else "NOT OK"))
    lines.append("next                " + report["next"])
    return "\n".join(lines)


# -- plain uvicorn (no gunicorn): what `kill -USR1 <main pid>` does here --------------------------
PLAIN_BEHAVIOURS = {
    "server-dies": "USR1 kills the server (default action): an outage",
    "supervisor-dies": "USR1 kills the supervisor; its children are orphaned, writing into the rotated file",
    "swallowed": "USR1 is queued and dropped (no handle_usr1): every process keeps the rotated file",
    "uvicorn": "uvicorn handles USR1 itself",
    "loop-safe": "reopens every FileHandler from the event loop",
    "relays": "reopens its own files, relays USR1 to each live child (which reopens from its loop)",
    "unknown": "unknown shape: left alone",
}
PLAIN_PARTS = [
    ("uvicorn", "uvicorn.server", "Server"),
    ("uvicorn --workers N", "uvicorn.supervisors.multiprocess", "Multiprocess"),
    ("uvicorn --reload", "uvicorn.supervisors.basereload", "BaseReload"),
]


def _plain_unpatched(module, cls):
    """Read from uvicorn's own classes (our additions set aside), not from its version."""
    own = {name: v for name, v in vars(cls).items() if not getattr(v, "uvicorn_usr1_patch", False)}
    if cls.__name__ == "Server":
        if signal.SIGUSR1 in tuple(getattr(module, "HANDLED_SIGNALS", ())):
            return "uvicorn"
        return "server-dies" if "serve" in vars(cls) else "unknown"
    if "handle_usr1" in own:
        return "uvicorn"
    if callable(own.get("handle_signals")):
        takes_usr1 = signal.SIGUSR1 in (getattr(module, "SIGNALS", None) or {})
        return "swallowed" if takes_usr1 else "supervisor-dies"
    if "startup" in vars(cls) and callable(own.get("run")):
        return "supervisor-dies"
    return "unknown"


def inspect_plain_uvicorn():
    """[{part, unpatched, here}] for uvicorn's server and supervisors, when uvicorn is installed.

    `here` is what a uvicorn started from this environment does: importing the module here
    goes through the start-up hook exactly as `uvicorn ...` does."""
    from uvicorn_usr1_patch import server_patch, supervisor_patch

    parts = []
    for part, module_name, class_name in PLAIN_PARTS:
        module, failure = _import(module_name, class_name)
        if failure is not None:
            parts.append({"part": part, "error": failure["error"]})
        if module is None:
            continue
        cls = getattr(module, class_name, None)
        if not isinstance(cls, type):
            continue
        unpatched = _plain_unpatched(module, cls)
        if class_name == "Server":
            here = "loop-safe" if server_patch.is_patched(cls) else unpatched
        else:
            here = "relays" if supervisor_patch.is_patched(cls) else unpatched
        parts.append(
            {
                "part": part,
                "class": "{}.{}".format(module_name, class_name),
                "unpatched": unpatched,
                "here": here,
            }
        )
    return parts


def render_plain_uvicorn(parts):
    lines = []
    for entry in parts:
        if "error" in entry:
            lines.append("{:<20}import failed: {}".format(entry["part"], entry["error"]))
            continue
        lines.append("plain {}".format(entry["part"]))
        lines.append("  unpatched         " + PLAIN_BEHAVIOURS.get(entry["unpatched"], entry["unpatched"]))
        lines.append("  started from here " + PLAIN_BEHAVIOURS.get(entry["here"], entry["here"]))
    return lines


USAGE = "usage: python -m uvicorn_usr1_patch [doctor] [--json]"


def main(argv):
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE + "\n\n" + __doc__.split("\n", 2)[2].strip())
        return 0
    if argv not in ([], ["--json"]):
        unexpected = [a for a in argv if a != "--json"] or argv
        print("{} (unexpected: {})".format(USAGE, " ".join(unexpected)), file=sys.stderr)
        return 2
    report = inspect_environment()
    print(json.dumps(report, indent=2, sort_keys=True) if argv else render(report))
    return 0 if report["ok"] else 1
