"""python -m uvicorn_usr1_patch check --pid MASTER_PID | --pidfile PATH [--json] [--reopen] [--timeout S]

Read-only diagnosis of a running gunicorn: for the master and each worker, which log files it holds
open, whether any of them is stale (renamed or deleted by logrotate: the process writes where nobody
reads), and what SIGUSR1 will do to it. Everything comes from /proc; nothing is written to, signalled
or traced, except that --reopen sends one SIGUSR1 to the master (by PID) and then verifies.

Exit status: 0 nothing stale and every process reopens on USR1; 1 something stale, or a process that
will not reopen (or dies) on USR1, or --reopen did not clear everything; 2 bad input.

What counts as a log file: a regular file the process opened for writing (O_WRONLY or O_RDWR, from
/proc/PID/fdinfo) and either in append mode, write-only, or named *.log/*.out/*.err/*.txt. Read-only
files and read-write scratch files (gunicorn's deleted worker heartbeat file) are not logs.

Stale means one of:
  deleted  - the file has no name left (readlink ends in " (deleted)": rotated, compressed, removed);
  rotated  - the fd's file now has a rotated name (access.log.1, access.log-20240101, ...) while the
             original name is another file, or is a log path gunicorn was started with;
  replaced - the name the fd shows now belongs to another inode.
The kernel follows renames, so /proc shows the file's new name; the rotated check therefore strips
rotation suffixes to find the name the file was opened under.

Python 3.6+, stdlib only; never imported at interpreter start-up.
"""

import argparse
import json
import os
import re
import signal
import stat
import sys
import time

LOG_SUFFIXES = (".log", ".out", ".err", ".txt")
# A rotation suffix: a separator then digits (".1", "-20240101", "-2024-01-01-1704067200", "_3").
ROTATED_TAIL = re.compile(r"[.\-_][0-9][0-9.\-_]*$")
# dateext with `extension .log`: "access-20240101.log" was "access.log" (six digits at least).
ROTATED_MIDDLE = re.compile(r"[.\-_][0-9][0-9.\-_]{5,}(\.[A-Za-z]+)$")
# gunicorn flags naming log files, so a rotated file whose original was never re-created is still
# recognised as one.
LOG_FLAGS = ("--access-logfile", "--error-logfile", "--log-file")
# Signals only gunicorn's master catches (gunicorn's Worker.init_signals resets them): a worker that
# catches them still runs the master's Python handlers, as uvicorn 0.4-0.13.2 workers do.
MASTER_ONLY = ("SIGTTIN", "SIGTTOU")
DELETED = " (deleted)"


class CheckError(Exception):
    """Bad input: printed as one line, exit 2."""


# -- reading /proc --------------------------------------------------------------------------------
def _read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def _proc_error(pid, err, what):
    if isinstance(err, PermissionError):
        return CheckError("permission denied reading {}: run check as gunicorn's user or root".format(what))
    if isinstance(err, FileNotFoundError) or not os.path.exists("/proc/{}".format(pid)):
        return CheckError("no such process: {}".format(pid))
    return CheckError("cannot read {} of pid {}: {}".format(what, pid, err))


def command_line(pid):
    return [a for a in _read("/proc/{}/cmdline".format(pid)).split("\0") if a]


def parent_pid(pid):
    stat_line = _read("/proc/{}/stat".format(pid))
    # the command name is in parentheses and may hold spaces: split after the last ')'
    return int(stat_line[stat_line.rindex(")") + 2 :].split()[1])


def _is_zombie(pid):
    stat_line = _read("/proc/{}/stat".format(pid))
    return stat_line[stat_line.rindex(")") + 2 :].split()[0] in ("Z", "X")


def children(pid):
    """Live child PIDs: /proc/PID/task/*/children when the kernel has it, else a /proc scan."""
    found = set()
    try:
        tasks = os.listdir("/proc/{}/task".format(pid))
        for tid in tasks:
            found.update(int(c) for c in _read("/proc/{}/task/{}/children".format(pid, tid)).split())
    except OSError:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if parent_pid(int(entry)) == pid:
                        found.add(int(entry))
                except (OSError, ValueError):
                    continue
    alive = []
    for child in sorted(found):
        try:
            if not _is_zombie(child):
                alive.append(child)
        except OSError:  # exited meanwhile
            continue
    return alive


def signal_masks(pid):
    """{'SigBlk': int, 'SigIgn': int, 'SigCgt': int} from /proc/PID/status."""
    masks = {}
    for line in _read("/proc/{}/status".format(pid)).splitlines():
        key, _, value = line.partition(":")
        if key in ("SigBlk", "SigIgn", "SigCgt"):
            masks[key] = int(value.strip(), 16)
    return masks


def _bit(signame):
    return 1 << (int(getattr(signal, signame)) - 1)


def usr1_disposition(masks, role):
    """(state, ok, meaning) of SIGUSR1 for a process with these masks."""
    usr1 = _bit("SIGUSR1")
    blocked = " (blocked for now: delivered when unblocked)" if masks.get("SigBlk", 0) & usr1 else ""
    if masks.get("SigCgt", 0) & usr1:
        inherited = role == "worker" and any(masks["SigCgt"] & _bit(s) for s in MASTER_ONLY)
        if inherited:
            return (
                "inherited",
                False,
                "caught by the master's handler inherited at fork: the worker does not reopen "
                "(uvicorn 0.4-0.13.2 UvicornWorker.init_signals is `pass`); install uvicorn-usr1-patch "
                "in gunicorn's environment and restart gunicorn" + blocked,
            )
        return "caught", True, "caught: reopens its logs" + blocked
    if masks.get("SigIgn", 0) & usr1:
        return "ignored", False, "ignored: never reopens" + blocked
    meaning = "default action: USR1 KILLS this process"
    if role == "worker":  # gunicorn respawns it; its in-flight requests are cut
        meaning += (
            " (uvicorn 0.13.3-0.18.3 reset gunicorn's handlers); install uvicorn-usr1-patch "
            "in gunicorn's environment and restart gunicorn"
        )
    return "default", False, meaning + blocked


# -- which fds are logs, and which are stale ------------------------------------------------------
def _in_root(pid, path):
    """`path` as the process sees it (its mount namespace, its chroot)."""
    return "/proc/{}/root{}".format(pid, path)


def _fd_flags(pid, fd):
    for line in _read("/proc/{}/fdinfo/{}".format(pid, fd)).splitlines():
        if line.startswith("flags:"):
            return int(line.split(":", 1)[1].strip(), 8)
    return 0


def looks_like_log(flags, path):
    mode = flags & os.O_ACCMODE
    if mode == os.O_RDONLY:
        return False
    return bool(flags & os.O_APPEND) or mode == os.O_WRONLY or path.lower().endswith(LOG_SUFFIXES)


def original_names(path):
    """Names `path` may have had before logrotate renamed it, most specific first."""
    directory, name = os.path.split(path)
    found = []
    tail = ROTATED_TAIL.search(name)
    if tail and tail.start() > 0:
        found.append(name[: tail.start()])
    middle = ROTATED_MIDDLE.search(name)
    if middle and middle.start() > 0:
        found.append(name[: middle.start()] + middle.group(1))
    return [os.path.join(directory, n) for n in found]


def _same_file(st, other):
    return (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino)


def classify(pid, path, st, known_logs):
    """(stale reason or None, the name it was opened under)."""
    if path.endswith(DELETED):
        name = path[: -len(DELETED)]
        originals = original_names(name)  # "access.log" for a rotated "access.log.1" that is gone now
        return "deleted", originals[0] if originals else name
    try:
        now = os.stat(_in_root(pid, path))
    except OSError:
        return "deleted", path
    if not _same_file(st, now):
        return "replaced", path
    if path in known_logs:
        return None, path
    for original in original_names(path):
        try:
            other = os.stat(_in_root(pid, original))
        except OSError:
            other = None
        if other is not None and not _same_file(st, other):
            return "rotated", original
        if other is None and original in known_logs:
            return "rotated", original
    return None, path


def log_files(pid, known_logs):
    """[{'fd', 'path', 'stale', 'opened_as'}] for the log files `pid` holds open."""
    fd_dir = "/proc/{}/fd".format(pid)
    try:
        fds = sorted(os.listdir(fd_dir), key=int)
    except OSError as err:
        raise _proc_error(pid, err, "/proc/{}/fd".format(pid)) from None
    found = []
    for fd in fds:
        try:
            path = os.readlink(os.path.join(fd_dir, fd))
            if not path.startswith("/"):  # pipe:[..], socket:[..], anon_inode:..
                continue
            st = os.stat(os.path.join(fd_dir, fd))  # the open file itself, whatever its name now
            if not stat.S_ISREG(st.st_mode) or not looks_like_log(_fd_flags(pid, fd), path):
                continue
        except OSError:  # closed meanwhile
            continue
        reason, opened_as = classify(pid, path, st, known_logs)
        if path.endswith(DELETED):
            path = path[: -len(DELETED)]  # the last name it had, without the kernel's mark
        found.append({"fd": int(fd), "path": path, "stale": reason, "opened_as": opened_as})
    return found


def configured_logs(pid):
    """Absolute log paths named on gunicorn's command line (relative ones resolved in its cwd)."""
    try:
        argv = command_line(pid)
        cwd = os.readlink("/proc/{}/cwd".format(pid))
    except OSError:
        return set()
    paths = set()
    for i, arg in enumerate(argv):
        for flag in LOG_FLAGS:
            value = None
            if arg == flag and i + 1 < len(argv):
                value = argv[i + 1]
            elif arg.startswith(flag + "="):
                value = arg[len(flag) + 1 :]
            if value and value != "-":
                paths.add(os.path.normpath(os.path.join(cwd, value)))
    return paths


# -- one look at the whole deployment -------------------------------------------------------------
def read_pidfile(path):
    try:
        text = _read(path).strip()
    except OSError as err:
        raise CheckError("cannot read pidfile {}: {}".format(path, err.strerror or err)) from None
    if not text.isdigit() or int(text) <= 0:
        raise CheckError("pidfile {} does not hold a pid: {!r}".format(path, text[:40]))
    return int(text)


def validate_master(pid):
    if not sys.platform.startswith("linux") or not os.path.isdir("/proc/self/fd"):
        raise CheckError("check needs Linux's /proc (this is {})".format(sys.platform))
    if pid <= 0 or not os.path.isdir("/proc/{}".format(pid)):
        raise CheckError("no such process: {}".format(pid))
    try:
        argv = command_line(pid)
        comm = _read("/proc/{}/comm".format(pid)).strip()
        parent = parent_pid(pid)
    except OSError as err:
        raise _proc_error(pid, err, "/proc/{}/cmdline".format(pid)) from None
    if not any("gunicorn" in part for part in argv + [comm]):
        shown = " ".join(argv)[:80] or comm
        raise CheckError("pid {} is not a gunicorn master (it runs: {})".format(pid, shown))
    try:
        parent_is_gunicorn = any("gunicorn" in a for a in command_line(parent))
    except OSError:
        parent_is_gunicorn = False
    if parent_is_gunicorn and not children(pid):
        raise CheckError("pid {} is a gunicorn worker; pass its master: --pid {}".format(pid, parent))


def inspect(master):
    """A report dict for `master` and its current workers."""
    pids = [master] + children(master)
    known = configured_logs(master)
    files = {}
    for pid in pids:
        try:
            files[pid] = log_files(pid, known)
        except CheckError:
            if pid == master or os.path.exists("/proc/{}".format(pid)):
                raise  # e.g. workers running as another user (gunicorn --user)
            files[pid] = None  # a worker that exited while we looked
        if files[pid]:
            known.update(f["path"] for f in files[pid] if not f["stale"])
    processes = []
    for pid in pids:
        if files[pid] is None:
            continue
        role = "master" if pid == master else "worker"
        try:
            masks = signal_masks(pid)
        except OSError:
            continue
        state, ok, meaning = usr1_disposition(masks, role)
        processes.append(
            {
                "pid": pid,
                "role": role,
                "usr1": state,
                "usr1_ok": ok,
                "usr1_meaning": meaning,
                "masks": {k: "{:016x}".format(v) for k, v in sorted(masks.items())},
                "files": files[pid],
            }
        )
    return summarize(master, processes)


def summarize(master, processes):
    stale = [p for p in processes if any(f["stale"] for f in p["files"])]
    bad_usr1 = [p for p in processes if not p["usr1_ok"]]
    problems = []
    if stale:
        problems.append(
            "{} of {} processes write to rotated/deleted files ({})".format(
                len(stale), len(processes), ", ".join(str(p["pid"]) for p in stale)
            )
        )
    by_state = {}
    for p in bad_usr1:
        by_state.setdefault(p["usr1"], []).append(str(p["pid"]))
    advice = {
        "inherited": "USR1 will NOT reopen their logs",
        "default": "USR1 will KILL them",
        "ignored": "USR1 is ignored",
    }
    for state, pids in sorted(by_state.items()):
        problems.append("{} ({}): {}".format(advice[state], state, ", ".join(pids)))
    if not processes or not [p for p in processes if p["role"] == "worker"]:
        problems.append("no workers found")
    return {
        "master": master,
        "workers": [p["pid"] for p in processes if p["role"] == "worker"],
        "processes": processes,
        "stale": sum(1 for p in processes for f in p["files"] if f["stale"]),
        "problems": problems,
        "ok": not problems,
    }


# -- --reopen: signal the master, then verify -----------------------------------------------------
def reopen(master, before, timeout, interval=0.1):
    """Send USR1 to the master only, then poll until the reopen is over or `timeout` s passed.

    Over means: nothing stale, every worker whose USR1 action is "default" has died (else a quick
    first look, before the signal reached them, would pass), as many workers run as before, and
    the respawned ones have installed their own signal handlers.
    Nothing stale to begin with: no signal is sent at all.
    """
    result = {"before": before, "usr1_sent_to": None, "timeout": timeout, "seconds": 0.0}
    if before["stale"] == 0:
        result.update(after=before, cleared=True, workers_gone=[], ok=before["ok"])
        return result
    doomed = set(p["pid"] for p in before["processes"] if p["role"] == "worker" and p["usr1"] == "default")
    # a worker forked a moment ago has not run init_signals yet: it shows the master's handlers
    booting_looks = "inherited" not in set(p["usr1"] for p in before["processes"])
    sent_at = time.monotonic()
    try:
        os.kill(master, signal.SIGUSR1)
    except OSError as err:
        raise CheckError("cannot signal pid {}: {}".format(master, err.strerror or err)) from None
    deadline = sent_at + timeout
    while True:
        after = inspect(master)
        done = (
            after["stale"] == 0
            and not doomed & set(after["workers"])
            and len(after["workers"]) >= len(before["workers"])
            and not (booting_looks and any(p["usr1"] == "inherited" for p in after["processes"]))
        )
        if done or time.monotonic() >= deadline:
            break
        time.sleep(interval)
    gone = sorted(set(before["workers"]) - set(after["workers"]))
    cleared = after["stale"] == 0
    result.update(
        after=after,
        usr1_sent_to=master,
        seconds=round(time.monotonic() - sent_at, 2),
        cleared=cleared,
        workers_gone=gone,
        ok=cleared and not gone,
    )
    return result


# -- output ---------------------------------------------------------------------------------------
def _common_dir(report):
    paths = [f["opened_as"] for p in report["processes"] for f in p["files"]]
    paths += [f["path"] for p in report["processes"] for f in p["files"]]
    if not paths:
        return ""
    common = os.path.commonpath([os.path.dirname(path) for path in paths])
    return "" if common == "/" else common


def _file_text(f, base):
    def short(path):
        return os.path.relpath(path, base) if base else path

    if not f["stale"]:
        return short(f["path"])
    if f["stale"] == "rotated":
        return "{} STALE(rotated from {})".format(short(f["path"]), short(f["opened_as"]))
    if f["stale"] == "deleted":
        if f["opened_as"] != f["path"]:
            return "{} STALE(deleted; was {})".format(short(f["path"]), short(f["opened_as"]))
        return "{} STALE(deleted)".format(short(f["path"]))
    return "{} STALE(name now another file)".format(short(f["path"]))


def render(report):
    base = _common_dir(report)
    lines = [
        "gunicorn master {}, {} workers{}".format(
            report["master"], len(report["workers"]), "; log files under " + base + "/" if base else ""
        )
    ]
    for p in report["processes"]:
        names = []
        for f in p["files"]:  # stdout and stderr often share a file: list it once
            text = _file_text(f, base)
            if text not in names:
                names.append(text)
        lines.append(
            "  {:<6} {:>7}  USR1={:<9}  {}".format(
                p["role"], p["pid"], p["usr1"], ", ".join(names) or "(no log files open)"
            )
        )
    explained = set()
    for p in report["processes"]:
        if not p["usr1_ok"] and p["usr1"] not in explained:
            explained.add(p["usr1"])
            lines.append("  USR1={}: {}".format(p["usr1"], p["usr1_meaning"]))
    if report["ok"]:
        lines.append("verdict: OK: nothing stale; every process reopens its logs on USR1")
    else:
        lines.append("verdict: PROBLEM: " + "; ".join(report["problems"]))
    return "\n".join(lines)


def render_reopen(result):
    if result["usr1_sent_to"] is None:
        return render(result["before"]) + "\nreopen: nothing stale, so no USR1 was sent"
    lines = ["before:", render(result["before"]), ""]
    lines.append(
        "sent SIGUSR1 to master {}; waited {:.2f}s (limit {}s)".format(
            result["usr1_sent_to"], result["seconds"], result["timeout"]
        )
    )
    lines += ["after:", render(result["after"]), ""]
    if result["workers_gone"]:
        lines.append(
            "reopen: FAILED: workers {} died on USR1 (now running: {})".format(
                ", ".join(str(p) for p in result["workers_gone"]),
                ", ".join(str(p) for p in result["after"]["workers"]) or "none",
            )
        )
    elif not result["cleared"]:
        lines.append("reopen: FAILED: {} log fds still stale after USR1".format(result["after"]["stale"]))
    else:
        lines.append("reopen: OK: every stale log file was reopened, no worker died")
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m uvicorn_usr1_patch check",
        description="Which gunicorn processes write to rotated log files, and what USR1 does to them.",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--pid", type=int, help="the gunicorn master's PID")
    target.add_argument("--pidfile", help="gunicorn's --pid file")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--reopen", action="store_true", help="send USR1 to the master, then verify the stale files are gone"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="--reopen: seconds to wait for the reopen (10)"
    )
    return parser.parse_args(argv)


def main(argv):
    try:
        args = parse_args(argv)
    except SystemExit as exit:  # argparse already printed its one-line usage error
        return 0 if exit.code == 0 else 2
    try:
        master = args.pid if args.pid is not None else read_pidfile(args.pidfile)
        validate_master(master)
        report = inspect(master)
        if args.reopen:
            report = reopen(master, report, max(args.timeout, 0.0))
    except CheckError as err:
        print("uvicorn_usr1_patch check: {}".format(err), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(render_reopen(report) if args.reopen else render(report))
    return 0 if report["ok"] else 1
