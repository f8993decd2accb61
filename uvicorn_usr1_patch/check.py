"""python -m uvicorn_usr1_patch check --pid MASTER_PID | --pidfile PATH [--logrotate CONF]
                                   [--json | --format text|json|nagios] [--prometheus-textfile PATH]
                                   [--reopen] [--timeout S]

Read-only diagnosis of a running gunicorn, or plain uvicorn (--pid of its main process, issue 11):
for the master (main process) and each worker, which log files it holds
open, whether any of them is stale (the name it was opened as now names another file or nothing:
rotated, renamed, deleted; the process writes where nobody reads), what SIGUSR1 does to it, and
what the logrotate configuration that rotates those files will do (CONF, or the stanzas of
/etc/logrotate.conf and what it includes that match the open logs).
Everything comes from /proc and the config files; nothing is written to, signalled or traced, except
that --reopen sends one SIGUSR1 to the verified master (check_target.py) and then verifies; it
refuses a uvicorn main process that does not catch SIGUSR1 (USR1 would kill it), and
--prometheus-textfile writes its file.

Every output renders one result (check_result.py): text, --json (one document on every exit
status), --format nagios (one line) and the Prometheus textfile, so they cannot disagree.
Exit status without --format nagios: 0 ok; 1 warning or critical (something stale, a process that
will not reopen or dies on USR1, a logrotate setting that loses lines or breaks the reopen, a
--reopen that did not clear everything); 2 unknown (bad input, a target that is not a verified
gunicorn master or uvicorn main process, --reopen aimed at one that USR1 would kill). With
--format nagios: 0 ok, 1 warning (logrotate findings only), 2 critical, 3 unknown. docs/check.md.

Python 3.6+, stdlib only; never imported at interpreter start-up.
"""

import argparse
import difflib
import json
import math
import os
import sys
import time

from uvicorn_usr1_patch import (
    check_files,
    check_logrotate,
    check_result,
    check_target,
    check_uvicorn,
    check_verdicts,
    procfs,
)
from uvicorn_usr1_patch.check_target import CheckError

SYSTEM_LOGROTATE = "/etc/logrotate.conf"
PIDFILE_FLAGS = ("-p", "--pid")
# USR1 states (check_verdicts) of a process that stays on its stale files whatever USR1 does
NEVER_REOPENS = ("inherited", "ignored", "swallowed")


# -- one look at the whole deployment -------------------------------------------------------------
def _files(pid, known, configured):
    try:
        return check_files.log_files(pid, known, configured)
    except PermissionError:
        raise CheckError(
            "permission denied reading /proc/{}/fd: run check as gunicorn's user or root".format(pid)
        ) from None


def _current_workers(master):
    if master.server == "gunicorn":
        return check_target.workers_of(check_target.Process(master.pid))
    found = check_uvicorn.uvicorn_main(master.pid)
    if found is None:
        raise CheckError("uvicorn main process {} exited".format(master.pid))
    return [child["pid"] for child in found["children"]]


def _verdict(master, masks, role, env):
    if master.server == "gunicorn":
        return check_verdicts.usr1_verdict(masks, role, env)
    return check_verdicts.plain_verdict(masks, role, master.mode, env)


def inspect(master, env):
    """A report dict for the verified `master` (check_target.Master) and its current workers."""
    workers = _current_workers(master)
    configured = check_files.configured_logs(master.pid)
    known = set(configured)
    processes = []
    for pid in [master.pid] + workers:
        role = "master" if pid == master.pid else "worker"
        try:
            files = _files(pid, known, configured)
            masks = procfs.signal_masks(pid)
            uid = procfs.user_ids(pid)[1]
        except OSError:
            if role == "master":
                raise CheckError("master {} exited".format(pid)) from None
            continue  # a worker that exited while we looked
        known.update(f["path"] for f in files if not f["stale"])
        process = {"pid": pid, "role": role, "uid": uid, "files": files}
        process.update(_verdict(master, masks, role, env))
        process["masks"] = {k: "{:016x}".format(v) for k, v in sorted(masks.items())}
        processes.append(process)
    return summarize(master.pid, processes, master.server, master.mode)


def summarize(master, processes, server="gunicorn", mode=None):
    stale = [p for p in processes if any(f["stale"] for f in p["files"])]
    problems = []
    if stale:
        problems.append(
            "{} of {} processes write to rotated/renamed/deleted files ({})".format(
                len(stale), len(processes), ", ".join(str(p["pid"]) for p in stale)
            )
        )
    by_state = {}
    advice = {
        "inherited": "USR1 will NOT reopen their logs",
        "default": "USR1 will KILL them",
        "ignored": "USR1 is ignored",
    }
    for p in processes:
        if not p["usr1_ok"]:
            # plain uvicorn's verdicts carry their own phrase ("USR1 kills the server")
            what = p.get("problem") or "{} ({})".format(advice[p["usr1"]], p["usr1"])
            by_state.setdefault((p["usr1"], what), []).append(str(p["pid"]))
    for (_, what), pids in sorted(by_state.items()):
        problems.append("{}: {}".format(what, ", ".join(pids)))
    workers = [p["pid"] for p in processes if p["role"] == "worker"]
    if not workers and server == "gunicorn":  # a single uvicorn server has none
        problems.append("no workers found")
    return {
        "server": server,
        "mode": mode,
        "master": master,
        "workers": workers,
        "processes": processes,
        "stale": sum(1 for p in processes for f in p["files"] if f["stale"]),
        "problems": problems,
        "ok": not problems,
    }


# -- the logrotate configuration ------------------------------------------------------------------
def _master_pidfiles(pid, given):
    found = set()
    if given:
        found.add(os.path.realpath(given))
    try:
        argv, cwd = procfs.command_line(pid), procfs.cwd(pid)
    except OSError:
        return found
    for i, arg in enumerate(argv):
        value = None
        if arg in PIDFILE_FLAGS and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--pid="):
            value = arg[len("--pid=") :]
        if value:
            found.add(os.path.realpath(os.path.join(cwd, value)))
    return found


def review_logrotate(master, report, config, pidfile):
    """{'configs', 'stanzas', 'findings'} for the logrotate stanzas rotating the server's logs."""
    logs = set()
    for p in report["processes"]:
        for f in p["files"]:
            logs.add(f["opened_as"] if f["stale"] else f["path"])
    configs = [config] if config else [SYSTEM_LOGROTATE]
    try:
        # logrotate's own entry point: /etc/logrotate.conf includes /etc/logrotate.d
        stanzas = check_logrotate.parse(configs[0]) if config or os.path.exists(SYSTEM_LOGROTATE) else []
    except CheckError as err:
        if config:
            raise  # the config the operator asked about: bad input
        return {"configs": configs, "stanzas": [], "findings": [], "error": str(err)}
    matched = check_logrotate.stanzas_for(stanzas, sorted(logs))
    workers = [p for p in report["processes"] if p["role"] == "worker"]
    if not workers and master.server == "uvicorn":
        workers = report["processes"]  # a single uvicorn server writes its logs itself
    try:
        ids = procfs.user_ids(workers[0]["pid"]) if workers else None
    except OSError:
        ids = None
    pidfiles = _master_pidfiles(master.pid, pidfile)
    server = {
        "master": master.pid,
        "pidfiles": pidfiles,
        "pidfile": os.path.abspath(pidfile) if pidfile else (sorted(pidfiles)[0] if pidfiles else None),
        "master_uid": master.uid,
        "worker_uid": ids[1] if ids else None,
        "worker_gids": [ids[3]] + ids[4] if ids else [],
        "root": procfs.in_root(master.pid, ""),
        # what a postrotate signal other than USR1 does depends on the server found
        "server": master.server,
        "mode": master.mode,
        "uvicorn": report.get("environment", {}).get("versions", {}).get("uvicorn"),
        "master_masks": procfs_masks(master.pid),
    }
    findings = check_logrotate.review(stanzas, sorted(logs), server)
    if config and not matched:
        findings.append(
            {
                "problem": "no-stanza",
                "stanza": None,
                "where": config,
                "logs": sorted(logs),
                "text": "no stanza of {} rotates the server's logs".format(config),
                "fix": "add a stanza for {}".format(" ".join(sorted(logs))),
            }
        )
    return {
        "configs": configs,
        "stanzas": [{"patterns": s.patterns, "where": s.where, "logs": mine} for s, mine in matched],
        "findings": findings,
        "error": None,
    }


def procfs_masks(pid):
    try:
        return procfs.signal_masks(pid)
    except OSError:
        return {}


# -- --reopen: signal the master, then verify -----------------------------------------------------
def reopen(master, env, before, timeout, interval=0.1):
    """Send USR1 to the verified master only, once; poll until the reopen is over or `timeout` s.

    Over means: nothing stale, every worker whose USR1 action is "default" has died (else a quick
    first look, before the signal reached them, would pass), as many workers run as before, and
    the respawned ones have installed their own signal handlers.
    Nothing stale to begin with: no signal is sent at all.
    """
    result = {"before": before, "usr1_sent_to": None, "timeout": timeout, "seconds": 0.0}
    if before["stale"] == 0:
        result.update(after=before, cleared=True, workers_gone=[], ok=before["ok"])
        return result
    swallowed = any(p["role"] == "master" and p["usr1"] == "swallowed" for p in before["processes"])
    # workers USR1 kills: over once they are gone (a supervisor that swallows USR1 relays nothing)
    doomed = set(
        p["pid"]
        for p in before["processes"]
        if p["role"] == "worker" and p["usr1"] == "default" and not swallowed
    )
    # processes whose USR1 state says they never reopen: waiting for them would only run out the clock
    hopeless = set(p["pid"] for p in before["processes"] if p["usr1"] in NEVER_REOPENS or swallowed)
    # a worker forked a moment ago has not run init_signals yet: it shows the master's handlers
    booting_looks = "inherited" not in set(p["usr1"] for p in before["processes"])
    sent_at = time.monotonic()
    check_target.send_usr1(master)
    deadline = sent_at + timeout
    while True:
        after = inspect(master, env)
        stale_pids = set(p["pid"] for p in after["processes"] if any(f["stale"] for f in p["files"]))
        settled = (
            not doomed & set(after["workers"])
            and len(after["workers"]) >= len(before["workers"])
            and not (booting_looks and any(p["usr1"] == "inherited" for p in after["processes"]))
        )
        done = settled and (after["stale"] == 0 or stale_pids <= hopeless)
        if done or time.monotonic() >= deadline:
            break
        time.sleep(interval)
    gone = sorted(set(before["workers"]) - set(after["workers"]))
    cleared = after["stale"] == 0
    result.update(
        after=after,
        usr1_sent_to=master.pid,
        seconds=round(time.monotonic() - sent_at, 2),
        cleared=cleared,
        workers_gone=gone,
        ok=cleared and not gone and after["ok"],
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
        return procfs.escape(os.path.relpath(path, base) if base else path)

    if not f["stale"]:
        return short(f["path"])
    if f["stale"] == "rotated":
        return "{} STALE(rotated from {})".format(short(f["path"]), short(f["opened_as"]))
    if f["stale"] == "renamed":
        return "{} STALE(renamed from {}; nothing there now)".format(short(f["path"]), short(f["opened_as"]))
    if f["stale"] == "deleted":
        if f["opened_as"] != f["path"]:
            return "{} STALE(deleted; was {})".format(short(f["path"]), short(f["opened_as"]))
        return "{} STALE(deleted)".format(short(f["path"]))
    return "{} STALE(name now another file)".format(short(f["path"]))


PLAIN_MODES = {"single": "single process", "workers": "--workers", "reload": "--reload"}


def _target(report):
    if report.get("server") == "uvicorn":
        return "uvicorn main process {}".format(report["master"])
    return "master {}".format(report["master"])


def _title(report):
    if report.get("server") != "uvicorn":
        return "gunicorn master {}, {} workers".format(report["master"], len(report["workers"]))
    title = "{} ({})".format(_target(report), PLAIN_MODES[report["mode"]])
    if report["mode"] == "workers":
        title += ", {} workers".format(len(report["workers"]))
    elif report["mode"] == "reload":
        title += ", child {}".format(", ".join(map(str, report["workers"])) or "none")
    return title


def render(report):
    base = _common_dir(report)
    plain = report.get("server") == "uvicorn"
    lines = [_title(report) + ("; log files under " + procfs.escape(base) + "/" if base else "")]
    for p in report["processes"]:
        names = []
        for f in p["files"]:  # stdout and stderr often share a file: list it once
            text = _file_text(f, base)
            if text not in names:
                names.append(text)
        lines.append(
            "  {:<6} {:>7}  USR1={:<9}  {}".format(
                "main" if plain and p["role"] == "master" else p["role"],
                p["pid"],
                p["usr1"],
                ", ".join(names) or "(no log files open)",
            )
        )
    explained = set()
    for p in report["processes"]:
        # a gunicorn master only relays; a uvicorn main process is the server or its supervisor
        if (p["role"] == "worker" or plain) and p["kind"] not in explained:
            explained.add(p["kind"])
            lines.append("  {}: {}".format(p["kind"], p["meaning"]))
            if p["note"]:
                lines.append("    note: " + p["note"])
    for warning in report.get("warnings", []):
        lines.append("  WARNING: " + procfs.escape(warning))
    if report["ok"]:
        lines.append("verdict: OK: nothing stale; every process reopens its logs on USR1")
    else:
        lines.append("verdict: PROBLEM: " + "; ".join(report["problems"]))
    return "\n".join(lines)


def render_logrotate(review):
    lines = []
    if review["error"]:
        return "logrotate: not reviewed: " + procfs.escape(review["error"])
    if not review["stanzas"] and not review["findings"]:
        return "logrotate: no stanza in {} rotates the server's logs".format(", ".join(review["configs"]))
    for stanza in review["stanzas"]:
        lines.append(
            "logrotate: {} ({}) rotates {}".format(
                procfs.escape(" ".join(stanza["patterns"])),
                procfs.escape(stanza["where"]),
                procfs.escape(", ".join(stanza["logs"])),
            )
        )
    for f in review["findings"]:
        label = "NOTE" if f.get("severity") == "info" else "PROBLEM"
        lines.append(
            "  {} {} ({}): {}".format(
                label, f["problem"], procfs.escape(f["where"]), procfs.escape(f["text"])
            )
        )
        lines.append(("    better: " if label == "NOTE" else "    fix: ") + procfs.escape(f["fix"]))
    if not any(f.get("severity") != "info" for f in review["findings"]):
        lines.append("logrotate: OK: nothing in it loses lines or breaks the reopen")
    return "\n".join(lines)


def render_reopen(result):
    if result["usr1_sent_to"] is None:
        return render(result["before"]) + "\nreopen: nothing stale, so no USR1 was sent"
    lines = ["before:", render(result["before"]), ""]
    lines.append(
        "sent SIGUSR1 to {}; waited {:.2f}s (limit {}s)".format(
            _target(result["before"]), result["seconds"], result["timeout"]
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
    elif not result["after"]["ok"]:
        lines.append(
            "reopen: FAILED: every stale log file was reopened, but: "
            + "; ".join(result["after"]["problems"])
        )
    else:
        lines.append("reopen: OK: every stale log file was reopened, no worker died")
    return "\n".join(lines)


def _escaped(value):
    """`value` with every string made printable (file names may hold any bytes)."""
    if isinstance(value, str):
        return procfs.escape(value)
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_escaped(v) for v in value]
    return value


# -- the command line -----------------------------------------------------------------------------
class UsageError(CheckError):
    """A mistake on the command line: one line naming it, status unknown."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line naming the mistake) instead of printing and exiting."""

    def error(self, message):
        raise UsageError("{} (see --help)".format(message))


def _pid(text):
    if not text or any(c not in "0123456789" for c in text) or int(text) <= 0:
        raise argparse.ArgumentTypeError("not a pid (ASCII digits): {!r}".format(text))
    return int(text)


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError("must be a finite number of seconds above 0: {!r}".format(text))
    return value


FORMATS = ("text", "json", "nagios")


def parse_args(argv):
    parser = _Parser(
        prog="python -m uvicorn_usr1_patch check",
        description="Which gunicorn processes write to rotated log files, what USR1 does to them, "
        "and what the logrotate configuration rotating them will do.",
    )
    # not required=True: argparse would then report a missing --pid before a mistyped flag
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--pid", type=_pid, help="the gunicorn master's PID")
    target.add_argument("--pidfile", help="gunicorn's --pid file")
    parser.add_argument(
        "--logrotate",
        metavar="CONF",
        help="the logrotate config to review (default: the stanzas of {} that match)".format(
            SYSTEM_LOGROTATE
        ),
    )
    parser.add_argument("--json", action="store_true", help="the same as --format json")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="text (default), json (one document, schema {}) or nagios (one line, exit 0/1/2/3)".format(
            check_result.SCHEMA
        ),
    )
    parser.add_argument(
        "--prometheus-textfile",
        metavar="PATH",
        help="also write the result as a node_exporter textfile-collector file (atomically)",
    )
    parser.add_argument(
        "--reopen", action="store_true", help="send USR1 to the master, then verify the stale files are gone"
    )
    parser.add_argument(
        "--timeout", type=_seconds, default=10.0, help="--reopen: seconds to wait for the reopen (10)"
    )
    args, extra = parser.parse_known_args(argv)
    if extra:
        flags = [e for e in extra if e.startswith("-")]
        wrong = (flags or extra)[0].split("=")[0]
        near = difflib.get_close_matches(wrong, parser._option_string_actions, n=1)
        parser.error(
            "unrecognized argument: {}{}".format(wrong, " (did you mean {}?)".format(near[0]) if near else "")
        )
    if args.pid is None and args.pidfile is None:
        parser.error("one of --pid PID or --pidfile PATH is required")
    if args.json and args.format not in (None, "json"):
        parser.error("--json and --format {} ask for two formats".format(args.format))
    args.format = "json" if args.json else (args.format or "text")
    return args


def format_asked(argv):
    """The format the command line asks for, read even when it does not parse (a usage error is
    reported in the format asked for, or a monitoring agent gets no document)."""
    found = set()
    for i, arg in enumerate(argv):
        if arg == "--json":
            found.add("json")
        elif arg == "--format" and i + 1 < len(argv) and argv[i + 1] in FORMATS:
            found.add(argv[i + 1])
        elif arg.startswith("--format=") and arg[len("--format=") :] in FORMATS:
            found.add(arg[len("--format=") :])
    return found.pop() if len(found) == 1 else "text"  # two formats asked: the mistake, as text


def textfile_asked(argv):
    for i, arg in enumerate(argv):
        if arg == "--prometheus-textfile" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--prometheus-textfile="):
            return arg[len("--prometheus-textfile=") :]
    return None


def run(args):
    """(report, findings) for parsed arguments; CheckError for bad input or an unverified target."""
    warnings = []
    if args.pid is not None:
        pid = args.pid
    else:
        pid, pidfile_stat = check_target.read_pidfile(args.pidfile)
    master = check_target.verify_master(pid)
    try:
        if args.reopen and master.refusal:  # a uvicorn that USR1 would kill: not even looked at
            raise CheckError(master.refusal)
        if args.pidfile:
            warnings = check_target.pidfile_warnings(args.pidfile, pidfile_stat, master.uid, master.gid)
        env = check_verdicts.environment(master.pid)
        report = inspect(master, env)
        report["warnings"] = warnings
        report["environment"] = env
        rotation = review_logrotate(master, report, args.logrotate, args.pidfile)
        findings = check_result.logrotate_findings(rotation)
        if args.reopen:
            report = reopen(master, env, report, args.timeout)
            looked_at = report["after"]
            findings = check_result.process_findings(looked_at) + check_result.reopen_findings(report)
            findings += check_result.logrotate_findings(rotation)
        else:
            findings = check_result.process_findings(report) + findings
        report["logrotate"] = rotation
    finally:
        master.close()
    return report, findings


def _print(text, file):
    """print(), falling back to \\x escapes when the terminal's encoding cannot show a name (LANG=C);
    a reader that went away (`| head`) ends the output quietly: the exit status stays the check's."""
    try:
        try:
            print(text, file=file)
        except UnicodeEncodeError:
            print(text.encode("ascii", "backslashreplace").decode("ascii"), file=file)
        file.flush()
    except BrokenPipeError:
        # the interpreter flushes stdout again at exit: point it at /dev/null so that stays quiet
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, file.fileno())
        os.close(devnull)


def _target_labels(args, report):
    """The master's pid and pidfile (given, or the --pid on its command line), for every format."""
    pid = report["master"] if report else (args.pid if args else None)
    pidfile = args.pidfile if args else None
    if pidfile:
        pidfile = os.path.abspath(pidfile)
    elif report:
        pidfile = (sorted(_master_pidfiles(pid, None)) or [None])[0]
    return {"master_pid": pid, "pidfile": pidfile}


def main(argv):
    args, report, error = None, None, None
    output, textfile = format_asked(argv), textfile_asked(argv)
    try:
        args = parse_args(argv)
        output, textfile = args.format, args.prometheus_textfile
        report, findings = run(args)
    except CheckError as err:
        error, findings = str(err), []  # escaped where it is printed, like every other string
    except OSError as err:  # /proc or a file vanished under us: still one line, one document
        error, findings = "cannot read {}: {}".format(err.filename or "/proc", err.strerror or err), []
    except SystemExit as exit:  # --help
        return exit.code or 0
    table = "nagios" if output == "nagios" else "text"
    # --reopen: the processes as they are after the USR1 are what the result says
    looked_at = report["after"] if report is not None and args.reopen else report
    doc = check_result.document(looked_at, findings, table, error, _target_labels(args, looked_at))
    if textfile:
        try:
            check_result.write_textfile(textfile, check_result.prometheus_text(doc))
        except OSError as err:
            # a monitoring file that is not written is no result: said in the format asked for
            error = "cannot write --prometheus-textfile {}: {}".format(textfile, err.strerror or err)
            report = None
            doc = check_result.document(None, [], table, error, doc["target"])
    if output == "json":
        whole = dict(_escaped(report) if report else {}, **_escaped(doc))
        whole["ok"] = doc["status"] == "ok"
        _print(json.dumps(whole, indent=2, sort_keys=True), sys.stdout)
    elif output == "nagios":
        _print(check_result.nagios_line(_escaped(doc)), sys.stdout)
    elif report is None:
        _print("uvicorn_usr1_patch check: {}".format(procfs.escape(error)), sys.stderr)
    else:
        text = render_reopen(report) if args.reopen else render(report)
        text += "\n" + render_logrotate(report["logrotate"])
        text += "\nresult: {} - {}".format(doc["status"].upper(), procfs.escape(doc["summary"]))
        _print(text, sys.stdout)
    return doc["exit"]
