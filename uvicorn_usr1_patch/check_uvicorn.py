"""Recognise a plain uvicorn main process (no gunicorn) and its children from /proc, for `check`.

uvicorn writes no pidfile, so `check --pid PID` may name a uvicorn main process: the command
`uvicorn ...` or `python -m uvicorn ...` (a program calling uvicorn.run() cannot be told apart by
its command line). Its children are the --workers / --reload processes it started with
multiprocessing's spawn method: each runs `python -c 'from multiprocessing.spawn import
spawn_main; ...' --multiprocessing-fork` (the semaphore tracker, `multiprocessing.resource_tracker`,
is not one). check_target verifies and signals what this finds; check_verdicts.plain_verdict says
what USR1 does to each of its processes. Python 3.6+, stdlib only.
"""

import os

from uvicorn_usr1_patch import procfs

SPAWNED_WORKER = "--multiprocessing-fork"


def runs_uvicorn(argv):
    """`uvicorn ...` (the console script, run by its interpreter or directly) or `python -m uvicorn`."""
    for i, arg in enumerate(argv[:3]):
        if os.path.basename(arg) == "uvicorn" or (arg == "-m" and argv[i + 1 : i + 2] == ["uvicorn"]):
            return True
    return False


def is_spawned_child(argv):
    """A process started by multiprocessing's spawn (uvicorn's workers and reload child)."""
    return SPAWNED_WORKER in argv and any("spawn_main" in arg for arg in argv)


def reload_from_environment(pid):
    """UVICORN_RELOAD in the environment the process was started with (click reads it)."""
    try:
        value = procfs.environ(pid).get("UVICORN_RELOAD", "")
    except OSError:
        return False
    return value.strip().lower() in ("1", "true", "t", "yes", "y", "on")


def uvicorn_main(pid):
    """{pid, mode, catches_usr1, children: [{pid, catches_usr1}]} for a uvicorn main process,
    or None. mode: "single", "workers" (--workers N) or "reload" (--reload)."""
    try:
        argv = procfs.command_line(pid)
    except OSError:
        return None
    if not runs_uvicorn(argv) or is_spawned_child(argv):
        return None
    children = []
    for child in procfs.children(pid):
        try:
            if is_spawned_child(procfs.command_line(child)):
                children.append({"pid": child, "catches_usr1": procfs.catches_usr1(child)})
        except OSError:
            continue  # exited meanwhile
    if not children:
        mode = "single"
    else:
        mode = "reload" if "--reload" in argv or reload_from_environment(pid) else "workers"
    return {"pid": pid, "mode": mode, "catches_usr1": procfs.catches_usr1(pid), "children": children}
