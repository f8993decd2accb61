"""`check`: the one result every output renders (text, --json, --format nagios, --prometheus-textfile).

A run ends in a list of findings, each {'kind', 'severity', 'path', 'line', 'pids', 'text', 'fix'},
and a status derived from them alone:
  critical - a process writes into a stale file, a process that USR1 kills or that will not reopen,
             or a --reopen that did not clear everything;
  warning  - only findings in the logrotate configuration (or a master with no worker);
  ok       - no finding above "info" (a pidfile anyone may write is "info": it is reported, it
             does not change the status);
  unknown  - no result at all: bad input, no verified target, no /proc.
Every format reads the same document (document()), so no two can disagree; the exit status is
the status through one of two tables (EXIT_CODES).
"""

import os
import tempfile

SCHEMA = 1
EXIT_CODES = {
    # without --format: the exit statuses check has always had
    "text": {"ok": 0, "warning": 1, "critical": 1, "unknown": 2},
    # Nagios/Icinga/Sensu plugin convention
    "nagios": {"ok": 0, "warning": 1, "critical": 2, "unknown": 3},
}
SEVERITY_ORDER = ("info", "warning", "critical")
GAUGES = (
    ("stale_files", "Log files a gunicorn/uvicorn process writes that logrotate renamed or deleted"),
    ("workers_not_reopening", "Processes that USR1 kills or that do not reopen their logs on USR1"),
    ("logrotate_findings", "Settings in the logrotate configuration that lose lines or break the reopen"),
    ("check_success", "1 when check could look at the server (status not unknown), else 0"),
)
METRIC_PREFIX = "uvicorn_usr1_patch_"
# what a process's USR1 state means for the reopen: findings of this kind
USR1_KINDS = {
    "default": ("usr1-kills", "USR1 kills them"),
    "inherited": ("usr1-not-reopening", "USR1 does not reopen their logs"),
    "ignored": ("usr1-not-reopening", "USR1 is ignored"),
    "swallowed": ("usr1-not-reopening", "USR1 is swallowed: nothing reopens"),
}


def _finding(kind, severity, text, fix=None, path=None, line=None, pids=()):
    return {
        "kind": kind,
        "severity": severity,
        "path": path,
        "line": line,
        "pids": sorted(pids),
        "text": text,
        "fix": fix,
    }


def _where(where):
    """('file', line) from logrotate's "file:line"."""
    path, _, line = (where or "").rpartition(":")
    if path and line.isdigit():
        return path, int(line)
    return where, None


def stale_files(report):
    """{(path written to, name it was opened as, reason): [pids]} for the stale fds of `report`."""
    found = {}
    for p in report["processes"]:
        for f in p["files"]:
            if f["stale"]:
                pids = found.setdefault((f["path"], f["opened_as"], f["stale"]), [])
                if p["pid"] not in pids:
                    pids.append(p["pid"])
    return found


def process_findings(report):
    found = []
    for (path, opened_as, reason), pids in sorted(stale_files(report).items()):
        text = {
            "rotated": "{opened} was rotated to {path}; {pids} still write to {path}",
            "renamed": "{opened} was renamed to {path} and not re-created; {pids} still write to {path}",
            "deleted": "{opened}: {pids} write to a deleted file (last named {path})",
            "replaced": "{path} names another file now; {pids} still write to the old one",
        }[reason].format(opened=opened_as, path=path, pids=", ".join(map(str, pids)))
        found.append(
            _finding(
                "stale-file",
                "critical",
                text,
                fix="check --reopen (one USR1 to the master), once every process reopens on USR1",
                path=opened_as,
                pids=pids,
            )
        )
    by_kind = {}
    for p in report["processes"]:
        if p["usr1_ok"]:
            continue
        kind, phrase = USR1_KINDS.get(p["usr1"], ("usr1-not-reopening", "USR1 does not reopen their logs"))
        # plain uvicorn's verdicts carry their own phrase ("USR1 kills the server")
        phrase = p.get("problem") or phrase
        # "" for no fix: keys are sorted below, and None does not sort beside a string
        by_kind.setdefault((kind, phrase, p.get("fix") or ""), []).append(p["pid"])
    for (kind, phrase, fix), pids in sorted(by_kind.items()):
        found.append(
            _finding(
                kind, "critical", "{}: {}".format(phrase, ", ".join(map(str, pids))), fix or None, pids=pids
            )
        )
    if not report["workers"] and report.get("server", "gunicorn") == "gunicorn":
        found.append(_finding("no-workers", "warning", "no workers found", pids=[report["master"]]))
    for warning in report.get("warnings", []):
        found.append(_finding("pidfile", "info", warning))
    return found


def logrotate_findings(review):
    found = []
    for f in review["findings"]:
        path, line = _where(f["where"])
        severity = f.get("severity", "warning")
        found.append(_finding("logrotate-" + f["problem"], severity, f["text"], f["fix"], path, line))
    return found


def reopen_findings(result):
    if result["usr1_sent_to"] is None:
        return []
    if result["workers_gone"]:
        text = "workers {} died on USR1".format(", ".join(map(str, result["workers_gone"])))
        return [_finding("reopen-failed", "critical", text, pids=result["workers_gone"])]
    return []


def status_of(findings):
    worst = max((SEVERITY_ORDER.index(f["severity"]) for f in findings), default=0)
    return {0: "ok", 1: "warning", 2: "critical"}[worst]


def counts_of(findings, report):
    stale = sum(1 for f in findings if f["kind"] == "stale-file")
    not_reopening = set()
    for f in findings:
        if f["kind"] in ("usr1-kills", "usr1-not-reopening"):
            not_reopening.update(f["pids"])
    return {
        "stale_files": stale,
        "workers_not_reopening": len(not_reopening),
        "logrotate_findings": sum(
            1 for f in findings if f["kind"].startswith("logrotate-") and f["severity"] != "info"
        ),
        "processes": len(report["processes"]) if report else 0,
    }


def summary_of(status, counts, findings, error=None):
    if status == "unknown":
        return error or "no result"
    if status == "ok":
        return "nothing stale; {} processes reopen their logs on USR1".format(counts["processes"])
    parts = []
    if counts["stale_files"]:
        parts.append("{} stale log file{}".format(counts["stale_files"], "s" * (counts["stale_files"] != 1)))
    if counts["workers_not_reopening"]:
        parts.append(
            "{} process{} USR1 kills or will not reopen".format(
                counts["workers_not_reopening"], "es" * (counts["workers_not_reopening"] != 1)
            )
        )
    if counts["logrotate_findings"]:
        parts.append(
            "{} logrotate finding{}".format(
                counts["logrotate_findings"], "s" * (counts["logrotate_findings"] != 1)
            )
        )
    others = [
        f["text"]
        for f in findings
        if f["severity"] != "info" and f["kind"] in ("no-workers", "reopen-failed")
    ]
    return "; ".join(parts + others)


def document(report, findings, output="text", error=None, target=None):
    """The JSON document (schema SCHEMA) every format renders. `report` None: status unknown."""
    if report is None:
        status, findings = "unknown", [_finding("no-result", "unknown", error or "no result")]
    else:
        status = status_of(findings)
    counts = counts_of(findings if report else [], report)
    doc = {
        "schema": SCHEMA,
        "status": status,
        "exit": EXIT_CODES[output][status],
        "summary": summary_of(status, counts, findings, error),
        "findings": findings,
        "counts": counts,
        "target": target or {},
    }
    return doc


# -- --format nagios ------------------------------------------------------------------------------
def nagios_line(doc):
    """`USR1 STATUS - summary | perfdata`: one line, as Nagios plugins print it."""
    line = "USR1 {} - {}".format(doc["status"].upper(), doc["summary"].replace("|", "/").replace("\n", " "))
    if doc["status"] == "unknown":
        return line
    counts = doc["counts"]
    perf = " ".join(
        "{}={}".format(name, counts[name])
        for name in ("stale_files", "workers_not_reopening", "logrotate_findings")
    )
    return "{} | {}".format(line, perf)


# -- --prometheus-textfile ------------------------------------------------------------------------
def _label_value(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus_text(doc):
    """node_exporter textfile-collector text: one gauge per GAUGES, labelled by master pid/pidfile.

    An unknown result carries check_success 0 only: the counts were not measured."""
    target = doc["target"]
    labels = ",".join(
        '{}="{}"'.format(name, _label_value(target.get(name) or "")) for name in ("master_pid", "pidfile")
    )
    values = dict(doc["counts"], check_success=0 if doc["status"] == "unknown" else 1)
    lines = []
    for name, help_text in GAUGES:
        if doc["status"] == "unknown" and name != "check_success":
            continue
        lines.append("# HELP {}{} {}".format(METRIC_PREFIX, name, help_text))
        lines.append("# TYPE {}{} gauge".format(METRIC_PREFIX, name))
        lines.append("{}{}{{{}}} {}".format(METRIC_PREFIX, name, labels, values[name]))
    return "\n".join(lines) + "\n"


def write_textfile(path, text):
    """Write `text` to `path` atomically: a temp file in the same directory, then rename over it, so
    node_exporter never reads half a file. OSError when the directory cannot be written."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(temp, 0o644)  # node_exporter usually runs as its own user
        os.rename(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
