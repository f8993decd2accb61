"""`check`: review the logrotate configuration that rotates a gunicorn's log files.

Parses logrotate's syntax as logrotate(8) describes it: `#` comments (first non-blank character),
quoted and globbed file patterns (several on a line, or on lines before the `{`), `include` of a file
or a directory (read inline, in order, skipping taboo extensions), options before any stanza as
defaults for the stanzas after them, and scripts (`postrotate` ... `endscript`) taken verbatim, so
shell braces inside them do not end the stanza. Then names, with the fix, each setting that loses log
lines or breaks the reopen, for the stanzas whose patterns match the files the server has open.
"""

import fnmatch
import glob
import grp
import os
import pwd
import re
import shlex
import signal
import stat

from uvicorn_usr1_patch import procfs
from uvicorn_usr1_patch.check_target import CheckError, read_pidfile

CONFIG_MAX = 1 << 20  # bytes of one config file
TABOO = (".rpmsave", ".rpmorig", "~", ",v", ".rpmnew", ".swp", ".cfsaved", ".disabled", ".dpkg-old")
TABOO += (".dpkg-dist", ".dpkg-new", ".dpkg-bak", ".dpkg-del", ".ucf-old", ".ucf-new", ".ucf-dist")
SCRIPTS = ("postrotate", "prerotate", "firstaction", "lastaction", "preremove")
# on/off options, each with its "no" form (nocompress ...): the later one wins
FLAGS = ("compress", "delaycompress", "copytruncate", "sharedscripts", "copy")
SIGNAL_SCRIPTS = ("postrotate", "lastaction")  # where a reopen signal belongs


class Stanza(object):
    def __init__(self, patterns, where, options):
        self.patterns = patterns
        self.where = where  # "file:line" of the `{`
        self.options = dict(options)  # name -> (value, "file:line")
        self.scripts = {}  # name -> (text, "file:line")

    def get(self, name, default=None):
        return self.options.get(name, (default, None))[0]


def _read_config(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise CheckError("cannot read logrotate config {}: {}".format(path, err.strerror)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CheckError("logrotate config {} is not a regular file".format(path))
        data = os.read(fd, CONFIG_MAX + 1)
    finally:
        os.close(fd)
    if len(data) > CONFIG_MAX:
        raise CheckError("logrotate config {} is larger than {} bytes".format(path, CONFIG_MAX))
    return os.fsdecode(data)


def parse(path):
    """Every stanza of the logrotate config `path` (and what it includes), in order."""
    stanzas = []
    _parse_file(path, {}, stanzas, set())
    return stanzas


def _set_option(options, words, where):
    key = words[0].lower()
    args = words[1:]
    if key in FLAGS:
        options[key] = (True, where)
    elif key.startswith("no") and key[2:] in FLAGS:
        options[key[2:]] = (False, where)
    elif key == "create":
        options["create"] = (args, where)
    elif key == "nocreate":
        options["create"] = (False, where)
    else:
        options[key] = (args or True, where)


def _words(line):
    try:
        return shlex.split(line.replace("=", " ", 1) if re.match(r"^\w+\s*=", line) else line)
    except ValueError:
        return line.split()


def _parse_file(path, defaults, stanzas, reading):
    real = os.path.realpath(path)
    if real in reading:
        raise CheckError("logrotate config {} includes itself".format(path))
    reading = reading | {real}
    stanza, script, pending, pending_at = None, None, [], None
    for number, raw in enumerate(_read_config(path).splitlines(), 1):
        where = "{}:{}".format(path, number)
        line = raw.strip()
        if script is not None:  # verbatim until endscript: braces here are the shell's
            if line == "endscript":
                stanza.scripts[script[0]] = ("\n".join(script[2]), script[1])
                script = None
            else:
                script[2].append(raw)
            continue
        if not line or line.startswith("#"):
            continue
        if stanza is not None:
            if line == "}":
                stanzas.append(stanza)
                stanza = None
                continue
            if line.endswith("{"):
                raise CheckError("{}: a `{{` inside a stanza (logrotate has no nested stanzas)".format(where))
            words = _words(line)
            if words[0].lower() in SCRIPTS:
                script = (words[0].lower(), where, [])
            elif words[0].lower() == "include":
                raise CheckError("{}: `include` inside a stanza".format(where))
            else:
                _set_option(stanza.options, words, where)
            continue
        if line.endswith("{"):
            patterns = pending + _words(line[:-1])
            if not patterns:
                raise CheckError("{}: a stanza without file patterns".format(where))
            stanza, pending = Stanza(patterns, pending_at or where, defaults), []
            pending_at = None
            continue
        if line == "}":
            raise CheckError("{}: `}}` without a stanza".format(where))
        if line[0] in "/~\"'":  # file patterns whose `{` comes on a later line
            pending += _words(line)
            pending_at = pending_at or where
            continue
        words = _words(line)
        if words[0].lower() == "include" and len(words) > 1:
            _include(os.path.expanduser(words[1]), defaults, stanzas, reading)
        else:
            _set_option(defaults, words, where)
    if script is not None:
        raise CheckError("{}: `{}` at {} has no endscript".format(path, script[0], script[1]))
    if stanza is not None:
        raise CheckError("{}: the stanza at {} is not closed".format(path, stanza.where))
    if pending:
        raise CheckError("{}: file patterns without a stanza: {}".format(path, " ".join(pending)))


def _include(path, defaults, stanzas, reading):
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            if name.endswith(TABOO) or not os.path.isfile(full):
                continue
            _parse_file(full, defaults, stanzas, reading)
    elif os.path.exists(path):
        _parse_file(path, defaults, stanzas, reading)


# -- which stanzas rotate this server's logs ------------------------------------------------------
def matches(pattern, path):
    """glob(3) matching as logrotate does: `*` and `?` stay within one path component."""
    parts, names = pattern.split("/"), path.split("/")
    return len(parts) == len(names) and all(fnmatch.fnmatchcase(n, p) for n, p in zip(names, parts))


def files_of(stanza, root=""):
    """The existing files the stanza's patterns name now (what one logrotate run rotates)."""
    found = set()
    for pattern in stanza.patterns:
        for path in glob.glob(root + pattern):
            if os.path.isfile(path):
                found.add(path[len(root) :])
    return sorted(found)


def stanzas_for(stanzas, logs):
    """[(stanza, [logs it matches])] for the stanzas matching any of `logs`; the last one wins."""
    chosen = {}
    for stanza in stanzas:
        for log in logs:
            if any(matches(p, log) for p in stanza.patterns):
                chosen[log] = stanza  # logrotate refuses a file in two stanzas; the later one here
    found = []
    for stanza in stanzas:
        mine = sorted(log for log, s in chosen.items() if s is stanza)
        if mine:
            found.append((stanza, mine))
    return found


# -- what the scripts signal ----------------------------------------------------------------------
# "$(cat FILE)", `cat FILE`, $(< FILE), each maybe quoted: one group per form holds FILE
_PIDFILE = (
    r"""["']?(?:\$\(\s*cat\s+["']?([^)"'\s]+)["']?\s*\)"""
    r"""|`\s*cat\s+["']?([^`"'\s]+)["']?\s*`"""
    r"""|\$\(\s*<\s*["']?([^)"'\s]+)["']?\s*\))["']?"""
)


SIGNAL_SPEC = r"(?:-s\s*|--signal[=\s]+|-)(?:SIG)?([A-Za-z]+[0-9]*|[0-9]+)\b"


def _signal_name(spec):
    """'HUP' for 'HUP', 'SIGHUP', 'hup' or '1'; None when `spec` names no signal ('-f' of pkill)."""
    if spec.isdigit():
        if int(spec) == 0:
            return "0"  # `kill -0`: a liveness test, sends nothing
        try:
            return signal.Signals(int(spec)).name[3:]
        except ValueError:
            return None
    name = spec.upper()
    name = name[3:] if name.startswith("SIG") else name
    return name if isinstance(getattr(signal, "SIG" + name, None), int) else None


def _take_signal(rest):
    """(signal name, `rest` without its signal option); kill/killall/pkill send TERM by default."""
    for found in re.finditer(SIGNAL_SPEC, rest):
        if found.start() and not rest[found.start() - 1].isspace():
            continue  # inside a word: "gunicorn-2"
        name = _signal_name(found.group(1))
        if name:
            return name, (rest[: found.start()] + " " + rest[found.end() :]).strip()
    return "TERM", rest.strip()


def all_signals(script):
    """[(command, target, signal)] for each signal the script sends, USR1 or not: ('kill', pidfile or
    pid or None), ('killall'|'pkill'|'systemctl', name), ('systemctl-main', unit), with signal 'HUP',
    'USR1' ...; and ('systemctl-reload'|'systemctl-restart', unit, 'reload'|'restart') for
    `systemctl reload|restart UNIT` and `service UNIT reload|restart`."""
    variables = {}
    for name, *files in re.findall(r"\b(\w+)=" + _PIDFILE, script):
        variables[name] = next(f for f in files if f)
    found = []
    for command in re.split(r"[;\n]|&&|\|\||\bthen\b|\bdo\b", script):
        command = command.strip().lstrip("{( \t")  # `{ kill ...; }`, `( kill ... )`
        words = command.split()
        if not words:
            continue
        tool = os.path.basename(words[0])
        rest = command[len(words[0]) :]
        if tool in ("kill", "killall", "pkill") and _take_signal(rest)[0] == "0":
            continue
        if tool in ("killall", "pkill"):
            sig, rest = _take_signal(rest)
            try:
                names = [w for w in shlex.split(rest) if not w.startswith("-")]
            except ValueError:
                names = rest.split()
            found.append((tool, names[-1] if names else "?", sig))
        elif tool == "systemctl" and "kill" in words:
            sig, _ = _take_signal(rest)
            # --kill-whom=main: only the unit's main process (a master, a uvicorn supervisor)
            main = re.search(r"--kill-who(m)?=main", rest)
            found.append(("systemctl-main" if main else "systemctl", words[-1], sig))
        elif tool == "systemctl" and len(words) > 2 and words[1] in SYSTEMCTL_ACTIONS:
            action = SYSTEMCTL_ACTIONS[words[1]]
            found.append(("systemctl-" + action, words[-1], action))
        elif tool in ("service", "invoke-rc.d") and len(words) > 2 and words[2] in SYSTEMCTL_ACTIONS:
            action = SYSTEMCTL_ACTIONS[words[2]]
            found.append(("systemctl-" + action, words[1], action))
        elif tool == "kill":
            sig, target = _take_signal(rest)
            if target.startswith("-"):  # kill -l, kill --help: lists, sends nothing
                continue
            pidfile = re.match(_PIDFILE + r"$", target)
            variable = re.match(r"""^["']?\$\{?(\w+)\}?["']?$""", target)
            if pidfile:
                found.append(("kill", next(f for f in pidfile.groups() if f), sig))
            elif variable and variable.group(1) in variables:
                found.append(("kill", variables[variable.group(1)], sig))
            elif target.isdigit():
                found.append(("kill", int(target), sig))
            else:
                found.append(("kill", None, sig))
    return found


SYSTEMCTL_ACTIONS = {
    "reload": "reload",
    "reload-or-restart": "reload",
    "try-reload-or-restart": "reload",
    "force-reload": "reload",
    "restart": "restart",
    "try-restart": "restart",
}


def signals(script):
    """[(command, target)] for each USR1 the script sends (all_signals, USR1 only)."""
    return [(tool, target) for tool, target, sig in all_signals(script) if sig == "USR1"]


# -- what a signal other than USR1 does to the server found ---------------------------------------
# gunicorn's Arbiter (arbiter.py, every release 19-27): its handle_* methods
GUNICORN_SIGNALS = {
    "HUP": (
        True,
        "HUP reloads gunicorn: the master reopens its logs and replaces every worker with a fresh one "
        "(graceful), so the logs are reopened; the cost: all workers are restarted on every rotation "
        "(in-flight requests finish, the app is imported again; with --preload, files the app opened "
        "at import stay stale)",
    ),
    "TERM": (False, "TERM stops gunicorn (quick shutdown): every rotation takes the server down"),
    "INT": (False, "INT stops gunicorn (quick shutdown): every rotation takes the server down"),
    "QUIT": (False, "QUIT stops gunicorn (graceful shutdown): every rotation takes the server down"),
    "KILL": (False, "KILL kills the gunicorn master: every rotation takes the server down"),
    "USR2": (
        False,
        "USR2 starts a second gunicorn master beside this one (binary upgrade); the old master and "
        "its workers keep writing into the rotated files until they get QUIT: no reopen",
    ),
    "WINCH": (False, "WINCH stops gunicorn's workers (when daemonized); nothing is reopened"),
    "TTIN": (False, "TTIN adds one worker; nothing is reopened"),
    "TTOU": (False, "TTOU removes one worker; nothing is reopened"),
}


def signal_effect(sig, server):
    """(reopens: True/False/None, what `sig` does to the server found) for a signal other than USR1.

    server: review()'s dict; 'server' is "gunicorn" or "uvicorn", 'mode' plain uvicorn's mode,
    'master_masks' the SigCgt/SigIgn of the master (main process), 'uvicorn' its release."""
    if sig == "reload":
        return None, (
            "reload runs the unit's ExecReload, which check cannot see: for gunicorn that is usually "
            "`kill -HUP $MAINPID` (every worker restarted on every rotation); make ExecReload send USR1"
        )
    if sig == "restart":
        return True, (
            "restart stops and starts the server: the logs are reopened, at the cost of an outage "
            "(requests refused or cut) on every rotation"
        )
    if server.get("server", "gunicorn") == "gunicorn":
        if sig in GUNICORN_SIGNALS:
            return GUNICORN_SIGNALS[sig]
        return False, "{} is not one of gunicorn's signals: its default action (or nothing)".format(sig)
    # plain uvicorn: judged from what the main process has installed, with its release named
    release = "uvicorn" + (" " + server["uvicorn"] if server.get("uvicorn") else "")
    masks = server.get("master_masks") or {}
    number = getattr(signal, "SIG" + sig, None)
    bit = procfs.signal_bit(number) if number else 0
    if sig in ("TERM", "INT"):
        return False, "{} stops {} (graceful shutdown): every rotation takes the server down".format(
            sig, release
        )
    if masks.get("SigIgn", 0) & bit:
        return False, "{} is ignored by {}'s main process: nothing is reopened".format(sig, release)
    if not masks.get("SigCgt", 0) & bit:
        return False, (
            "{} kills {}'s main process ({}; its default action, uvicorn installs no handler for it): "
            "every rotation takes the server down".format(sig, release, server.get("mode") or "single")
        )
    if sig == "HUP" and server.get("mode") == "workers":
        return True, (
            "HUP makes {}'s --workers supervisor restart every worker (uvicorn 0.30+ handle_hup); the new "
            "workers open their log files afresh, the supervisor's own stay stale; the cost: all workers "
            "are restarted on every rotation".format(release)
        )
    return None, "{} is caught by {}'s main process: what its handler does, check cannot tell".format(
        sig, release
    )


# -- the review -----------------------------------------------------------------------------------
def _name(table, number):
    try:
        return table(number)[0]
    except KeyError:
        return str(number)


def _user_id(name, table, fallback):
    try:
        return int(name) if str(name).isdigit() else table(name)[2]
    except KeyError:
        return fallback


def _can_open(uid, gids, owner, group, mode):
    if uid == 0:
        return True
    if owner == uid:
        return bool(mode & 0o200)
    if group in gids:
        return bool(mode & 0o020)
    return bool(mode & 0o002)


def _finding(key, stanza, where, logs, text, fix, severity="warning"):
    """A finding of the review; severity "info" names what a setting costs without faulting it."""
    return {
        "problem": key,
        "severity": severity,
        "stanza": " ".join(stanza.patterns),
        "where": where,
        "logs": logs,
        "text": text,
        "fix": fix,
    }


def review(stanzas, logs, server):
    """Findings for the stanzas rotating `logs`.

    server: {'master': pid, 'pidfiles': [realpaths of its pidfile], 'pidfile': path to show,
             'master_uid', 'worker_uid', 'worker_gids', 'root': the master's /proc/PID/root}.
    """
    findings = []
    kill_usr1 = "kill -USR1 $(cat {})".format(server["pidfile"] or "/run/gunicorn.pid")
    for stanza, mine in stanzas_for(stanzas, logs):
        findings += _review_stanza(stanza, mine, server, kill_usr1)
    return findings


def _review_stanza(stanza, mine, server, kill_usr1):
    found = []
    copytruncate = stanza.get("copytruncate")
    if copytruncate:
        found.append(
            _finding(
                "copytruncate",
                stanza,
                stanza.options["copytruncate"][1],
                mine,
                # no figure here: the measured share lives in bench/results/alternatives.txt (a file
                # the wheel does not ship), and a number copied into a message goes stale
                "copytruncate: lines written between the copy and the truncate are lost (measured "
                "under load: bench/results/alternatives.txt in the source repository)",
                "remove copytruncate; rotate in create mode: `create MODE USER GROUP` and "
                "postrotate `{}` endscript".format(kill_usr1),
            )
        )
    if stanza.get("compress") and not stanza.get("delaycompress") and not copytruncate:
        where = stanza.options["compress"][1]
        found.append(
            _finding(
                "compress-without-delaycompress",
                stanza,
                where,
                mine,
                "compress without delaycompress: logrotate compresses and unlinks the rotated file right "
                "after postrotate, before the workers have reopened: lines they write in between are lost",
                "add `delaycompress`"
                + (" (and drop `nodelaycompress`)" if "delaycompress" in stanza.options else ""),
            )
        )
    if not copytruncate:
        found += _review_create(stanza, mine, server)
        found += _review_signal(stanza, mine, server, kill_usr1)
    return found


def _review_create(stanza, mine, server):
    uid, gids = server["worker_uid"], server["worker_gids"]
    if uid is None or uid == 0:
        return []
    user, group = _name(pwd.getpwuid, uid), _name(grp.getgrgid, gids[0])
    fit = "create 0640 {} {}".format(user, group)
    create = stanza.get("create", False)
    if create is False:
        if server["master_uid"] == uid:
            return []
        return [
            _finding(
                "create",
                stanza,
                stanza.options.get("create", (None, stanza.where))[1],
                mine,
                "no `create`: the master ({}) re-creates {} on USR1 as itself; the workers ({}) cannot open "
                "it".format(_name(pwd.getpwuid, server["master_uid"]), ", ".join(mine), user),
                "add `{}`".format(fit),
            )
        ]
    problems = []
    for log in mine:
        try:
            st = os.stat(server["root"] + log)
            owner, owner_group, mode = st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)
        except OSError:
            owner, owner_group, mode = server["master_uid"], 0, 0o644
        args = list(create)
        if args and re.match(r"^[0-7]{3,4}$", args[0]):
            mode = int(args.pop(0), 8)
        if args:
            owner = _user_id(args.pop(0), pwd.getpwnam, -1)
        if args:
            owner_group = _user_id(args.pop(0), grp.getgrnam, -1)
        if not _can_open(uid, gids, owner, owner_group, mode):
            problems.append(
                "{} as {}:{} {:04o}".format(
                    log, _name(pwd.getpwuid, owner), _name(grp.getgrgid, owner_group), mode
                )
            )
    if not problems:
        return []
    return [
        _finding(
            "create",
            stanza,
            stanza.options["create"][1],
            mine,
            "`create{}` makes {}: the workers ({}:{}) cannot open it, so they cannot reopen".format(
                "".join(" " + a for a in create), "; ".join(problems), user, group
            ),
            "`{}` (gunicorn's --user/--group)".format(fit),
        )
    ]


def _is_this_master(target, server):
    if isinstance(target, int):
        return target == server["master"]
    if target is None:
        return None
    if os.path.realpath(target) in server["pidfiles"]:
        return True
    try:
        return read_pidfile(server["root"] + target)[0] == server["master"]
    except CheckError:
        return False


def _is_this_unit(unit, server):
    """True/False: the unit is/is not the one whose main process is this server; None: unknown
    (the server runs under no systemd unit here)."""
    mine = procfs.systemd_unit(server["master"])
    if mine is None:
        return None
    return unit in (mine, mine.rpartition(".")[0]) and procfs.parent_pid(server["master"]) == 1


def _fix_usr1(kill_usr1):
    return "postrotate `{}` endscript: USR1 reopens the logs without restarting anything".format(kill_usr1)


def _shown(tool, target, sig):
    if tool.startswith("systemctl-"):
        return "systemctl {} {}".format(sig, target)
    return "{} -{} {}".format(tool, sig, "..." if target is None else target)


def _reaches_this_server(tool, target, server):
    """True/None/False: the signal reaches this server / may (by name, unknown unit) / does not."""
    if tool == "kill":
        return _is_this_master(target, server)
    if tool in ("systemctl-main", "systemctl-reload", "systemctl-restart"):
        return _is_this_unit(target, server)
    return None  # killall/pkill/systemctl kill: every process by that name, this one likely among them


def _by_name(name, tool, target, stanza, where, mine, kill_usr1):
    return _finding(
        "signal-by-name",
        stanza,
        where,
        mine,
        "{} `{} ... {}` signals every process by that name: the master, each worker a second "
        "time directly, and any other gunicorn on the machine".format(name, tool, target),
        "postrotate `{}` endscript (the master relays USR1 to its workers)".format(kill_usr1),
    )


def _review_signal(stanza, mine, server, kill_usr1):
    found, to_master, unresolved = [], 0, 0
    for name in SIGNAL_SCRIPTS:
        if name not in stanza.scripts:
            continue
        text, where = stanza.scripts[name]
        for tool, target, sig in all_signals(text):
            if sig != "USR1":
                reached = _reaches_this_server(tool, target, server)
                if reached is False:
                    continue  # another process's business (a sidecar, another server)
                if tool == "kill" and reached is None:
                    unresolved += 1  # `kill -HUP $pid` from a loop: which process, the script decides
                    continue
                if tool in ("killall", "pkill", "systemctl"):
                    found.append(_by_name(name, tool, target, stanza, where, mine, kill_usr1))
                reopens, effect = signal_effect(sig, server)
                if reopens is None:
                    unresolved += 1
                    found.append(
                        _finding(
                            "signal-effect-unknown", stanza, where, mine, effect, _fix_usr1(kill_usr1), "info"
                        )
                    )
                elif reopens:
                    to_master += 1
                    # it works: named with its cost, not counted against the configuration
                    found.append(
                        _finding(
                            "signal-" + sig.lower(), stanza, where, mine, effect, _fix_usr1(kill_usr1), "info"
                        )
                    )
                else:
                    found.append(
                        _finding(
                            "signal-no-reopen",
                            stanza,
                            where,
                            mine,
                            "{} `{}`: {}".format(name, _shown(tool, target, sig), effect),
                            _fix_usr1(kill_usr1),
                        )
                    )
                continue
            if tool not in ("kill", "systemctl-main"):
                found.append(_by_name(name, tool, target, stanza, where, mine, kill_usr1))
                to_master += 1
                continue
            if tool == "systemctl-main":
                this = _is_this_unit(target, server)
                unit = procfs.systemd_unit(server["master"])
                other = "the main process of {}, but this server (pid {}) runs in {}".format(
                    target, server["master"], unit
                )
                fix = "postrotate `systemctl kill -s USR1 --kill-whom=main {}` endscript".format(unit)
            else:
                this = _is_this_master(target, server)
                other = "{}, not this gunicorn master (pid {})".format(
                    "pid {}".format(target) if isinstance(target, int) else "the pid in " + target,
                    server["master"],
                )
                fix = "postrotate `{}` endscript".format(kill_usr1)
            if this is None:  # `kill -USR1 $w` in a loop, or no systemd unit: the script decides
                unresolved += 1
            elif this:
                to_master += 1
            else:
                found.append(
                    _finding(
                        "signal-other-process", stanza, where, mine, "{} signals {}".format(name, other), fix
                    )
                )
    if not to_master and not unresolved and not any(f["severity"] == "warning" for f in found):
        found.append(
            _finding(
                "no-signal",
                stanza,
                stanza.where,
                mine,
                "no postrotate signal: nothing tells the server to reopen; it writes on into the rotated "
                "file",
                "add postrotate `{}` endscript".format(kill_usr1),
            )
        )
    count = len(files_of(stanza, server["root"]))
    signal_each = "postrotate" in stanza.scripts and all_signals(stanza.scripts["postrotate"][0])
    if signal_each and count > 1 and not stanza.get("sharedscripts"):
        found.append(
            _finding(
                "no-sharedscripts",
                stanza,
                stanza.scripts["postrotate"][1],
                mine,
                "postrotate runs once per rotated file without sharedscripts: {} signals per run ({} files "
                "match)".format(count, count),
                "add `sharedscripts`",
            )
        )
    return found
