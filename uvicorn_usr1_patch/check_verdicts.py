"""`check`: what SIGUSR1 does to each gunicorn process, from what the process has installed.

The signal masks in /proc/PID/status (SigCgt, SigIgn) say what a worker has installed; measured on
real gunicorn (tests/test_check.py) they are, for each worker type:
- uvicorn 0.4-0.13.2 unpatched: UvicornWorker.init_signals is `pass`, so the worker still runs the
  master's Python handlers: it catches HUP and USR2 (and CHLD) like the master. Every other worker
  type resets those to the default: gunicorn's Worker.init_signals resets Worker.SIGNALS (ABRT HUP
  QUIT INT TERM USR1 USR2 WINCH CHLD) and installs QUIT TERM INT WINCH USR1 ABRT; uvicorn 0.13.3+
  resets the same list (encode/uvicorn#895); the patched worker resets every master handler and
  catches QUIT/INT/ABRT itself. TTIN/TTOU are not in Worker.SIGNALS: every worker keeps the master's
  handler (or the patch's do-nothing one), so they tell nothing.
- uvicorn 0.13.3-0.18.3 unpatched: USR1 at its default action: it kills the worker
  (encode/uvicorn#1565).
- uvicorn 0.19+ and uvicorn-worker unpatched: USR1 caught by handle_usr1, which reopens inside the
  signal handler; WINCH and ABRT stay at the default.
- gunicorn's own workers (sync, gthread, gevent, eventlet, and the asgi worker of gunicorn 24+):
  Worker.init_signals ran, so WINCH and ABRT are caught too (a patched uvicorn worker catches ABRT,
  never WINCH).
A patched uvicorn 0.19+ worker catches the same signals as an unpatched one: that it is patched is
read from the environment gunicorn runs in (the uvicorn release in its site-packages, whether our
.pth is there and older than the master, UVICORN_USR1_PATCH in /proc/PID/environ).
Plain uvicorn (no gunicorn, issue 11): plain_verdict, for its main process and spawned children.
"""

import glob
import os
import shlex
import signal

from uvicorn_usr1_patch import ENV_VAR, enabled, procfs

PTH = "uvicorn_usr1_patch.pth"
DISTS = ("uvicorn", "uvicorn_worker", "gunicorn")
INSTALL = "install uvicorn-usr1-patch in {}'s environment ({}) and restart {}"


def _caught(masks, name):
    return bool(masks.get("SigCgt", 0) & procfs.signal_bit(getattr(signal, name)))


def _version_key(version):
    return tuple(int(part) if part.isdigit() else 0 for part in version.split(".")[:3])


# -- the environment gunicorn runs in -------------------------------------------------------------
def worker_class(argv, environ):
    """gunicorn's -k/--worker-class from its command line or GUNICORN_CMD_ARGS, or None."""
    try:
        args = shlex.split(environ.get("GUNICORN_CMD_ARGS", "")) + list(argv)
    except ValueError:
        args = list(argv)
    found = None
    for i, arg in enumerate(args):
        if arg in ("-k", "--worker-class") and i + 1 < len(args):
            found = args[i + 1]
        elif arg.startswith("--worker-class="):
            found = arg.split("=", 1)[1]
        elif arg.startswith("-k") and len(arg) > 2 and not arg.startswith("--"):
            found = arg[2:]
    return found


def _site_packages(pid, argv, environ):
    """site-packages directories of the Python that runs `pid`, as paths inside its root."""
    places = []
    try:
        cwd = procfs.cwd(pid)
    except OSError:
        cwd = "/"
    for arg in argv[:2]:  # the interpreter, and a script such as .../bin/gunicorn
        if "/" in arg:
            places.append(os.path.join(cwd, arg))
        elif arg == argv[0]:  # "python" or "gunicorn": the first of that name on its PATH
            found_on_path = [
                os.path.join(d, arg)
                for d in environ.get("PATH", "").split(":")
                if d.startswith("/") and os.path.exists(procfs.in_root(pid, os.path.join(d, arg)))
            ]
            places += found_on_path[:1]
    if environ.get("VIRTUAL_ENV", "").startswith("/"):
        places.append(os.path.join(environ["VIRTUAL_ENV"], "bin", "python"))
    found = []
    # a venv's bin/python is a symlink to the base interpreter: its prefix comes from the link's place
    for place in places:
        prefix = os.path.dirname(os.path.dirname(os.path.normpath(place)))
        for pattern in ("/lib/python3*/site-packages", "/lib/python3/dist-packages"):
            for path in sorted(glob.glob(procfs.in_root(pid, prefix + pattern))):
                inner = path[len(procfs.in_root(pid, "")) :]
                if inner not in found:
                    found.append(inner)
    try:
        for path in sorted(procfs.mapped_files(pid)):  # extension modules: uvloop, httptools ...
            if "/site-packages/" in path:
                inner = path[: path.index("/site-packages/") + len("/site-packages")]
                if inner not in found:
                    found.append(inner)
    except OSError:
        pass
    return found


def environment(master):
    """What gunicorn's environment says: worker class, releases, our .pth and UVICORN_USR1_PATCH."""
    try:
        argv = procfs.command_line(master)
        environ = procfs.environ(master)
    except OSError:
        argv, environ = [], {}
    found = {
        "worker_class": worker_class(argv, environ),
        "site_packages": None,
        "versions": {},
        "patch_pth": None,
        "patch_installed_after_start": False,
        "patch_env": environ.get(ENV_VAR),
    }
    for site in _site_packages(master, argv, environ):
        versions = {}
        for dist in DISTS:
            for info in glob.glob(procfs.in_root(master, os.path.join(site, dist + "-*.*-info"))):
                versions[dist] = _version(os.path.basename(info), dist)
        pth = os.path.join(site, PTH)
        if not versions and not os.path.exists(procfs.in_root(master, pth)):
            continue
        found.update(site_packages=site, versions=versions)
        if os.path.exists(procfs.in_root(master, pth)):
            found["patch_pth"] = pth
            try:
                mtime = os.stat(procfs.in_root(master, pth)).st_mtime
                # /proc/stat's btime is whole seconds (truncated): the start it gives may be up to
                # 1 s early, and a .pth written just before the start would look written after it
                found["patch_installed_after_start"] = mtime > procfs.start_epoch(master) + 1
            except OSError:
                pass
        break
    return found


def _version(info_name, dist):
    """'0.29.0' from 'uvicorn-0.29.0.dist-info' (or 'uvicorn-0.13.1-py3.8.egg-info')."""
    return info_name[len(dist) + 1 :].rsplit(".", 1)[0].split("-")[0]


def patch_active(env):
    return (
        bool(env["patch_pth"])
        and enabled({ENV_VAR: env["patch_env"] or ""}, warn=False)
        and not env["patch_installed_after_start"]
    )


def _fix(env, server="gunicorn"):
    where = env["site_packages"] or "its site-packages"
    if env["patch_pth"] and env["patch_installed_after_start"]:
        return (
            "uvicorn-usr1-patch was installed in {} after this {} started: restart {} (a reload, HUP, "
            "keeps the classes imported before the install; for gunicorn without downtime: USR2, then "
            "TERM (its graceful stop) to the old master, docs/check.md)".format(where, server, server)
        )
    if env["patch_pth"] and not enabled({ENV_VAR: env["patch_env"] or ""}, warn=False):
        return "{}={} in {}'s environment turns uvicorn-usr1-patch off: remove it and restart {}".format(
            ENV_VAR, env["patch_env"], server, server
        )
    return INSTALL.format(server, where, server)


# -- the verdicts ---------------------------------------------------------------------------------
def usr1_verdict(masks, role, env):
    """{'usr1', 'usr1_ok', 'kind', 'meaning', 'note'} for one process with these signal masks."""
    usr1 = procfs.signal_bit(signal.SIGUSR1)
    blocked = " (blocked for now: delivered when unblocked)" if masks.get("SigBlk", 0) & usr1 else ""
    versions = env["versions"]
    uvicorn = versions.get("uvicorn_worker") and "uvicorn-worker " + versions["uvicorn_worker"]
    uvicorn = uvicorn or (versions.get("uvicorn") and "uvicorn " + versions["uvicorn"]) or "uvicorn"
    verdict = {
        "usr1": "caught",
        "usr1_ok": True,
        "kind": None,
        "meaning": "caught: reopens its logs",
        "note": None,
        "fix": None,  # what to do, when there is something to do (check_result's findings carry it)
    }
    if role == "master":
        verdict["kind"] = "gunicorn master"
    if not masks.get("SigCgt", 0) & usr1:
        ignored = masks.get("SigIgn", 0) & usr1
        verdict.update(usr1="ignored" if ignored else "default", usr1_ok=False)
        verdict["meaning"] = (
            "ignored: never reopens" if ignored else "default action: USR1 KILLS this process"
        )
        if role == "worker" and not ignored:
            verdict["kind"] = uvicorn + " UvicornWorker, unpatched"
            verdict["meaning"] += (
                " (uvicorn 0.13.3-0.18.3 reset gunicorn's handlers, encode/uvicorn#895; gunicorn respawns"
                " it and its in-flight requests are cut, encode/uvicorn#1565); " + _fix(env)
            )
            verdict["fix"] = _fix(env)
        verdict["meaning"] += blocked
        return verdict
    if role == "master":
        verdict["meaning"] += blocked
        return verdict
    if _caught(masks, "SIGHUP") and _caught(masks, "SIGUSR2"):
        verdict.update(usr1="inherited", usr1_ok=False, kind=uvicorn + " UvicornWorker, unpatched")
        verdict["meaning"] = (
            "caught by the master's handler inherited at fork: the worker does not reopen "
            "(uvicorn 0.4-0.13.2 UvicornWorker.init_signals is `pass`); " + _fix(env) + blocked
        )
        verdict["fix"] = _fix(env)
        return verdict
    if _caught(masks, "SIGWINCH") and _caught(masks, "SIGABRT"):  # gunicorn's Worker.init_signals ran
        name = env["worker_class"] or "sync/gthread/asgi"
        verdict["kind"] = "gunicorn's own worker ({})".format(name)
        if name == "asgi" or name.endswith(".ASGIWorker"):
            verdict["meaning"] = "caught: reopens its logs from the event loop (gunicorn's asgi worker)"
        else:
            verdict["meaning"] = "caught: gunicorn's own handler reopens its logs"
        verdict["meaning"] += blocked
        return verdict
    old = versions.get("uvicorn") and _version_key(versions["uvicorn"]) < (0, 19)
    if patch_active(env) or (old and not versions.get("uvicorn_worker")):
        # below 0.19 an own USR1 handler can only be the patch's
        verdict["kind"] = uvicorn + " UvicornWorker, patched"
        verdict["meaning"] = "caught: uvicorn-usr1-patch reopens its logs from the event loop" + blocked
        return verdict
    verdict["kind"] = uvicorn + " UvicornWorker, unpatched"
    verdict["meaning"] = "caught: reopens its logs" + blocked
    verdict["note"] = (
        "reopens inside the signal handler (uvicorn 0.19+ and uvicorn-worker, encode/uvicorn#1565): a USR1 "
        "that lands while a line is being written gives `Logging error ... reentrant call` tracebacks "
        "(benoitc/gunicorn#2564); uvicorn-usr1-patch reopens from the event loop: " + _fix(env)
    )
    return verdict


# -- plain uvicorn (no gunicorn): the main process and its spawned children ---------------------
PLAIN_ROLES = {
    ("master", "single"): "server (single process)",
    ("master", "workers"): "--workers supervisor",
    ("master", "reload"): "--reload supervisor",
    ("worker", "workers"): "worker",
    ("worker", "reload"): "--reload child",
}
PLAIN_KILLED = {
    # what the default action does (issue 11, measured in tests/test_plain.py's controls)
    "single": "USR1 kills the server",
    "workers": "USR1 kills the supervisor; its workers are orphaned, writing into the rotated files",
    "reload": "USR1 kills the supervisor; its child is orphaned, writing into the rotated files",
}


def plain_verdict(masks, role, mode, env):
    """usr1_verdict's dict for a plain uvicorn process, plus 'problem': the phrase of the verdict.

    uvicorn alone never reopens on USR1 (issue 11): the server and the <= 0.29 supervisors keep
    the default action (killed), the 0.30+ Multiprocess queues it and drops it (no handle_usr1).
    Caught in a server or a <= 0.29 supervisor can only be the patch's handler (or the app's);
    for a 0.30+ supervisor, whether the patch is active is read from its environment."""
    usr1 = procfs.signal_bit(signal.SIGUSR1)
    version = env["versions"].get("uvicorn")
    name = " ".join(["uvicorn"] + ([version] if version else []) + [PLAIN_ROLES[role, mode]])
    blocked = " (blocked for now: delivered when unblocked)" if masks.get("SigBlk", 0) & usr1 else ""
    verdict = {"usr1": "caught", "usr1_ok": True, "kind": name + ", patched", "note": None, "problem": None}
    verdict["fix"] = None
    if not masks.get("SigCgt", 0) & usr1:
        verdict.update(usr1_ok=False, kind=name + ", unpatched", fix=_fix(env, "uvicorn"))
        if masks.get("SigIgn", 0) & usr1:
            verdict.update(usr1="ignored", problem="USR1 is ignored")
            verdict["meaning"] = "ignored: never reopens; " + _fix(env, "uvicorn") + blocked
            return verdict
        verdict["usr1"] = "default"
        if role == "master":
            verdict["problem"] = PLAIN_KILLED[mode]
            verdict["meaning"] = "default action: " + PLAIN_KILLED[mode] + " (uvicorn has no USR1 handling)"
        else:
            verdict["problem"] = "they do not catch USR1 (it kills them; they never reopen)"
            verdict["meaning"] = "default action: USR1 KILLS this process"
        verdict["meaning"] += "; " + _fix(env, "uvicorn") + blocked
        return verdict
    if role == "master" and mode != "single" and not patch_active(env):
        verdict.update(usr1="swallowed", usr1_ok=False, kind=name + ", unpatched", fix=_fix(env, "uvicorn"))
        verdict["problem"] = "USR1 is swallowed by the supervisor: nothing reopens"
        verdict["meaning"] = (
            "caught and dropped: uvicorn 0.30+'s supervisor queues USR1 and has no handle_usr1, so no "
            "process reopens; " + _fix(env, "uvicorn") + blocked
        )
        return verdict
    if role == "master" and mode != "single":
        verdict["meaning"] = "caught: reopens its own log files and relays USR1 to each live child" + blocked
    else:
        verdict["meaning"] = "caught: uvicorn-usr1-patch reopens its log files from the event loop" + blocked
        if not patch_active(env):
            verdict["kind"] = name
            verdict["note"] = (
                "USR1 is caught, yet uvicorn-usr1-patch is not active in its environment: the handler is "
                "not the patch's (the app's own?)"
            )
    return verdict
