"""`check`'s logrotate review, against a real gunicorn whose workers run as `nobody`.

Every config a test writes first goes through the real `logrotate -d` (debug: nothing is rotated
or run), so the review is held to configs logrotate itself accepts.
"""

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile

import pytest
import stacks
from check_cli import run_check, run_json

from tools.gunicorn_run import Gunicorn
from uvicorn_usr1_patch import check, check_logrotate, check_result, check_target, procfs


@pytest.fixture(scope="module")
def server_as_nobody():
    """gunicorn as root with --user nobody --group nogroup, logs in a directory root owns (0755)."""
    workdir = tempfile.mkdtemp(prefix="check-logrotate-")
    os.chmod(workdir, 0o755)
    nobody = pwd.getpwnam("nobody")
    g = Gunicorn(
        stacks.shared_venv("uvicorn-0.29.0"), workdir, extra_args=["--user", "nobody", "--group", "nogroup"]
    )
    open(g.app_log, "w").close()  # the workers open it as nobody
    os.chown(g.app_log, nobody.pw_uid, nobody.pw_gid)
    g.start()
    assert [procfs.user_ids(w)[1] for w in g.worker_pids()] == [nobody.pw_uid] * 2
    yield g
    g.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def logrotate_accepts(conf, workdir):
    """The real logrotate parses `conf` without an error (-d: nothing is rotated or run)."""
    proc = subprocess.run(
        ["logrotate", "-d", "-s", os.path.join(workdir, "state-d"), conf],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        universal_newlines=True,
        timeout=30,
    )
    assert proc.returncode == 0 and "error" not in proc.stdout.lower(), proc.stdout


def write_conf(g, name, body):
    conf = os.path.join(g.workdir, name)
    with open(conf, "w") as f:
        f.write(
            body.format(
                access=g.access_log, app=g.app_log, error=g.error_log, pidfile=g.pidfile, dir=g.workdir
            )
        )
    os.chmod(conf, 0o644)  # logrotate refuses group- or world-writable configs
    logrotate_accepts(conf, g.workdir)
    return conf


# the report's stanza (BACKGROUND.md), pointed at this server's access log
REPORT_STANZA = """{access} {{
    create
    size 1M
    rotate 20
    compress
    nodelaycompress
    dateext
    dateformat -%Y-%m-%d-%s
    missingok
    notifempty
    postrotate
        killall -s USR1 gunicorn
    endscript
}}
"""
GOOD = """# comments, a glob, an include and shell braces in the script: all of logrotate's syntax
compress
include {dir}/logrotate.d
"""
GOOD_INCLUDED = """{dir}/access.log
{dir}/app.l?g
{{
    # create fits gunicorn's --user nobody --group nogroup
    create 0640 nobody nogroup
    delaycompress
    sharedscripts
    missingok
    postrotate
        PIDFILE={pidfile}
        if [ -s "${{PIDFILE}}" ]; then {{ kill -USR1 "$(cat {pidfile})"; }}; fi
    endscript
}}
"""
PROBLEMS = {
    # gunicorn chowns its log files to --user at start, so the bare `create` keeps them nobody-owned
    "report": (REPORT_STANZA, ["compress-without-delaycompress", "signal-by-name"]),
    "copytruncate": ("{access} {{\n    copytruncate\n    compress\n}}\n", ["copytruncate"]),
    "create-root": (
        "{access} {{\n    create 0600 root root\n    postrotate\n        kill -USR1 $(cat {pidfile})\n"
        "    endscript\n}}\n",
        ["create"],
    ),
    "nocreate": (
        "{access} {{\n    postrotate\n        kill -USR1 `cat {pidfile}`\n    endscript\n}}\n",
        ["create"],
    ),
    "other-pidfile": (
        "{access} {{\n    create 0640 nobody nogroup\n    postrotate\n"
        "        kill -USR1 $(cat {dir}/other.pid)\n"
        "    endscript\n}}\n",
        ["signal-other-process"],
    ),
    "pkill": (
        "{access} {{\n    create 0640 nobody nogroup\n    postrotate\n        pkill -USR1 -f gunicorn\n"
        "    endscript\n}}\n",
        ["signal-by-name"],
    ),
    "no-signal": ("{access} {{\n    create 0640 nobody nogroup\n}}\n", ["no-signal"]),
    "no-sharedscripts": (
        "{access} {app} {{\n    create 0640 nobody nogroup\n    postrotate\n"
        '        [ -s {pidfile} ] && kill -s USR1 "$(cat {pidfile})"\n    endscript\n}}\n',
        ["no-sharedscripts"],
    ),
}
FIXES = {
    "create": "`create 0640 nobody nogroup`",
    "compress-without-delaycompress": "add `delaycompress` (and drop `nodelaycompress`)",
    "signal-by-name": "kill -USR1 $(cat {pidfile})",
    "copytruncate": "remove copytruncate",
    "signal-other-process": "kill -USR1 $(cat {pidfile})",
    "no-signal": "add postrotate `kill -USR1 $(cat {pidfile})` endscript",
    "no-sharedscripts": "add `sharedscripts`",
}


@pytest.mark.e2e
@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_logrotate_review_names_each_problem(server_as_nobody, name):
    g = server_as_nobody
    body, expected = PROBLEMS[name]
    with open(os.path.join(g.workdir, "other.pid"), "w") as f:
        f.write("{}\n".format(os.getpid()))  # someone else's pidfile
    conf = write_conf(g, "{}.conf".format(name), body)
    code, report = run_json("--pidfile", g.pidfile, "--logrotate", conf)
    findings = report["logrotate"]["findings"]
    assert sorted(f["problem"] for f in findings) == sorted(expected), findings
    assert code == 1
    for f in findings:
        assert FIXES[f["problem"]].format(pidfile=g.pidfile) in f["fix"], f
    code, text, _ = run_check("--pidfile", g.pidfile, "--logrotate", conf)
    assert code == 1
    for problem in expected:
        assert "PROBLEM {} ({}:".format(problem, conf) in text
    if name == "create-root":
        assert "access.log as root:root 0600: the workers (nobody:nogroup) cannot open it" in text


@pytest.mark.e2e
def test_logrotate_review_good_config(server_as_nobody):
    g = server_as_nobody
    os.makedirs(os.path.join(g.workdir, "logrotate.d"), exist_ok=True)
    os.chmod(os.path.join(g.workdir, "logrotate.d"), 0o755)
    write_conf(g, "logrotate.d/gunicorn", GOOD_INCLUDED)
    # a taboo extension: logrotate skips it, and so must the review (it would be a finding)
    write_conf(g, "logrotate.d/gunicorn.dpkg-old", "{access} {{\n    copytruncate\n}}\n")
    conf = write_conf(g, "good.conf", GOOD)
    code, report = run_json("--pidfile", g.pidfile, "--logrotate", conf)
    assert report["logrotate"]["findings"] == []
    (stanza,) = report["logrotate"]["stanzas"]
    assert stanza["logs"] == [g.access_log, g.app_log]
    assert stanza["where"] == os.path.join(g.workdir, "logrotate.d/gunicorn") + ":1"
    assert code == 0, report["problems"]
    code, text, _ = run_check("--pidfile", g.pidfile, "--logrotate", conf)
    assert (
        code == 0 and text.splitlines()[-2] == "logrotate: OK: nothing in it loses lines or breaks the reopen"
    )


def test_logrotate_parser_syntax(tmp_path):
    conf = tmp_path / "syntax.conf"
    conf.write_text(
        '# a comment\n  # an indented comment\ncompress\nmissingok\n"/srv/my app/*.log" /srv/b.log {\n'
        "    postrotate\n        for p in 1; do { echo }; done\n        x() { :; }\n    endscript\n"
        "    nocompress\n}\n/srv/c.log\n{\n    rotate=5\n    create 0640 nobody nogroup\n}\n"
    )
    os.chmod(str(tmp_path), 0o755)
    logrotate_accepts(str(conf), str(tmp_path))
    first, second = check_logrotate.parse(str(conf))
    assert first.patterns == ["/srv/my app/*.log", "/srv/b.log"] and first.get("compress") is False
    assert "x() { :; }" in first.scripts["postrotate"][0]
    assert second.patterns == ["/srv/c.log"] and second.get("compress") is True
    assert second.get("create") == ["0640", "nobody", "nogroup"] and second.get("rotate") == ["5"]
    assert check_logrotate.matches("/srv/my app/*.log", "/srv/my app/access.log")
    assert not check_logrotate.matches("/srv/*.log", "/srv/sub/access.log")  # `*` stays in a component
    (tmp_path / "broken.conf").write_text("/srv/a.log {\n    postrotate\n        kill -USR1 1\n}\n")
    with pytest.raises(check_target.CheckError, match="has no endscript"):
        check_logrotate.parse(str(tmp_path / "broken.conf"))


def test_signals_in_scripts():
    assert check_logrotate.signals("killall -s USR1 gunicorn") == [("killall", "gunicorn")]
    assert check_logrotate.signals("/usr/bin/pkill -USR1 -f 'gunicorn: master'") == [
        ("pkill", "gunicorn: master")
    ]
    assert check_logrotate.signals('[ -s /run/g.pid ] && kill -USR1 "$(cat /run/g.pid)"') == [
        ("kill", "/run/g.pid")
    ]
    assert check_logrotate.signals("kill -s SIGUSR1 `cat /run/g.pid`") == [("kill", "/run/g.pid")]
    assert check_logrotate.signals("P=$(cat /run/g.pid) && kill -USR1 $P") == [("kill", "/run/g.pid")]
    assert check_logrotate.signals("kill -HUP $(cat /run/g.pid)") == []
    assert check_logrotate.all_signals("kill -HUP $(cat /run/g.pid)") == [("kill", "/run/g.pid", "HUP")]
    assert check_logrotate.all_signals("/bin/kill -1 4242") == [("kill", 4242, "HUP")]
    assert check_logrotate.all_signals("kill 4242") == [("kill", 4242, "TERM")]  # kill's default
    assert check_logrotate.all_signals("kill -0 $(cat /run/g.pid) && kill -s HUP $(cat /run/g.pid)") == [
        ("kill", "/run/g.pid", "HUP")  # kill -0 only tests that the process is there
    ]
    assert check_logrotate.all_signals("pkill -f gunicorn") == [("pkill", "gunicorn", "TERM")]
    assert check_logrotate.all_signals("killall -s SIGHUP gunicorn") == [("killall", "gunicorn", "HUP")]
    assert check_logrotate.all_signals("systemctl reload app.service") == [
        ("systemctl-reload", "app.service", "reload")
    ]
    assert check_logrotate.all_signals("service app restart") == [("systemctl-restart", "app", "restart")]
    assert check_logrotate.signals("systemctl kill -s USR1 app.service") == [("systemctl", "app.service")]
    assert check_logrotate.signals("systemctl kill --kill-whom=main -s USR1 app.service") == [
        ("systemctl-main", "app.service")
    ]


@pytest.mark.e2e
def test_logrotate_review_without_option_reads_the_system_config(server_as_nobody, monkeypatch):
    """Without --logrotate: logrotate's own entry point and what it includes (here a copy under the
    test's directory standing in for /etc/logrotate.conf, which the test must not touch)."""
    g = server_as_nobody
    os.makedirs(os.path.join(g.workdir, "system.d"), exist_ok=True)
    write_conf(g, "system.d/other", "/var/log/not-this-server.log {{\n    missingok\n    copytruncate\n}}\n")
    write_conf(g, "system.d/gunicorn", PROBLEMS["pkill"][0])
    conf = write_conf(g, "system.conf", "weekly\ninclude {dir}/system.d\n")
    monkeypatch.setattr(check, "SYSTEM_LOGROTATE", conf)
    args = check.parse_args(["--pidfile", g.pidfile])
    report, findings = check.run(args)
    assert [f["problem"] for f in report["logrotate"]["findings"]] == ["signal-by-name"]
    assert check_result.status_of(findings) == "warning"
    with open(conf, "a") as f:
        f.write("/a.log {\n")  # a broken system config: not reviewed, check itself still works
    report, findings = check.run(args)
    assert report["logrotate"]["error"] and check_result.status_of(findings) == "ok"


@pytest.mark.e2e
def test_systemd_main_process_signal_is_not_a_missing_signal(server_as_nobody):
    """The README's plain-uvicorn stanza signals the unit's main process through systemd; with no
    systemd unit around the server (this test machine), which process gets it cannot be checked:
    no finding, rather than a false "no postrotate signal"."""
    g = server_as_nobody
    body = (
        "{access} {{\n    create 0640 nobody nogroup\n    postrotate\n"
        "        systemctl kill -s USR1 --kill-whom=main app.service\n    endscript\n}}\n"
    )
    conf = write_conf(g, "systemd-main.conf", body)
    code, report = run_json("--pidfile", g.pidfile, "--logrotate", conf)
    assert report["logrotate"]["findings"] == [] and code == 0, report


def test_systemd_unit_is_matched_to_the_server(monkeypatch):
    server = {"master": 4242}
    monkeypatch.setattr(check_logrotate.procfs, "parent_pid", lambda pid: 1)
    monkeypatch.setattr(check_logrotate.procfs, "systemd_unit", lambda pid: "app.service")
    assert check_logrotate._is_this_unit("app.service", server) is True
    assert check_logrotate._is_this_unit("app", server) is True
    assert check_logrotate._is_this_unit("other.service", server) is False
    monkeypatch.setattr(check_logrotate.procfs, "systemd_unit", lambda pid: None)
    assert check_logrotate._is_this_unit("app.service", server) is None


# -- every postrotate signal judged by what it does to the server found (issue 16) ----------------
HUP_STANZA = (
    "{access} {{\n    create 0640 nobody nogroup\n    delaycompress\n    postrotate\n"
    "        kill -HUP $(cat {pidfile})\n    endscript\n}}\n"
)


@pytest.mark.e2e
def test_kill_hup_postrotate_is_a_reload_not_a_missing_signal(server_as_nobody):
    """`kill -HUP` reloads gunicorn: the master reopens and replaces every worker. It used to be
    reported as "no postrotate signal ... writes on into the rotated file". Now: no warning, and a
    note naming the cost. The control: the same stanza without the postrotate is "no-signal"."""
    g = server_as_nobody
    conf = write_conf(g, "hup.conf", HUP_STANZA)
    code, report = run_json("--pidfile", g.pidfile, "--logrotate", conf)
    problems = [f["problem"] for f in report["logrotate"]["findings"]]
    assert problems == ["signal-hup"] and code == 0, report["logrotate"]["findings"]
    (note,) = report["logrotate"]["findings"]
    assert note["severity"] == "info" and "all workers are restarted on every rotation" in note["text"]
    assert report["status"] == "ok" and report["counts"]["logrotate_findings"] == 0
    code, text, _ = run_check("--pidfile", g.pidfile, "--logrotate", conf)
    assert code == 0 and "NOTE signal-hup" in text and "no postrotate signal" not in text

    control = write_conf(
        g, "hup-control.conf", HUP_STANZA.replace("        kill -HUP $(cat {pidfile})\n", "")
    )
    code, report = run_json("--pidfile", g.pidfile, "--logrotate", control)
    assert [f["problem"] for f in report["logrotate"]["findings"]] == ["no-signal"] and code == 1

    term = write_conf(g, "term.conf", HUP_STANZA.replace("kill -HUP", "kill -TERM"))
    code, report = run_json("--pidfile", g.pidfile, "--logrotate", term)
    (finding,) = report["logrotate"]["findings"]
    assert finding["problem"] == "signal-no-reopen" and "TERM stops gunicorn" in finding["text"]
    assert (code, report["status"]) == (1, "warning")


def test_signals_judged_for_plain_uvicorn():
    """Plain uvicorn: what the main process has installed decides, with the release named."""
    hup = procfs.signal_bit(signal.SIGHUP)
    plain = {"server": "uvicorn", "mode": "single", "uvicorn": "0.54.0", "master_masks": {"SigCgt": 0}}
    reopens, text = check_logrotate.signal_effect("HUP", plain)
    assert reopens is False and "HUP kills uvicorn 0.54.0's main process (single" in text
    supervisor = dict(plain, mode="workers", master_masks={"SigCgt": hup})  # 0.30+ handle_hup
    reopens, text = check_logrotate.signal_effect("HUP", supervisor)
    assert reopens is True and "restart every worker" in text and "all workers are restarted" in text
    assert check_logrotate.signal_effect("USR2", {"server": "gunicorn"})[0] is False
    assert check_logrotate.signal_effect("HUP", {"server": "gunicorn"})[0] is True
    assert check_logrotate.signal_effect("reload", {"server": "gunicorn"})[0] is None


# -- a number a message quotes comes from the file it cites (issue 16) ----------------------------
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CITATION = re.compile(r"(?<![\w/])((?:[\w.-]+/)+[\w.-]+\.(?:txt|md))\b")
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?%?")


def unsupported_numbers(message):
    """The numbers in `message` that none of the repository files it cites contains."""
    cited = [c for c in CITATION.findall(message) if os.path.isfile(os.path.join(REPO, c))]
    if not cited:
        return []
    rest = CITATION.sub(" ", message)
    texts = []
    for path in cited:
        with open(os.path.join(REPO, path)) as f:
            texts.append(f.read().replace(" %", "%"))
    return [n for n in NUMBER.findall(rest) if not any(n in text for text in texts)]


def _messages():
    """Every string constant of the package that is not a docstring: what check and the doctor say."""
    import ast
    import glob

    for path in sorted(glob.glob(os.path.join(REPO, "uvicorn_usr1_patch", "*.py"))):
        with open(path) as f:
            tree = ast.parse(f.read())
        docstrings = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body:
                first = node.body[0]
                if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant):
                    docstrings.add(id(first.value))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                yield os.path.relpath(path, REPO), node.lineno, node.value


def test_numbers_in_messages_come_from_the_file_they_cite(tmp_path):
    # the control: the message as it was (7.97% quoted; the cited result says 0.837 %) is caught
    old = (
        "copytruncate: lines written between the copy and the truncate are lost (7.97% of lines at full "
        "load: `python bench/alternatives.py`, bench/results/alternatives.txt)"
    )
    assert unsupported_numbers(old) == ["7.97%"]
    citing = [(where, line, text) for where, line, text in _messages() if CITATION.search(text)]
    assert any("bench/results/alternatives.txt" in text for _, _, text in citing)  # the scan sees it
    for where, line, text in citing:
        assert unsupported_numbers(text) == [], "{}:{}: {}".format(where, line, text)
    # and the finding as the review writes it
    conf = tmp_path / "c.conf"
    conf.write_text("/srv/access.log {\n    copytruncate\n}\n")
    (finding,) = check_logrotate.review(
        check_logrotate.parse(str(conf)), ["/srv/access.log"], {"pidfile": None}
    )
    assert "bench/results/alternatives.txt" in finding["text"] and unsupported_numbers(finding["text"]) == []


def test_non_usr1_signals_by_name_and_from_loops(tmp_path):
    """`killall -HUP gunicorn` is a reload AND a signal to every worker by name; `kill -HUP $w` from a
    loop names no process: no finding rather than a guess (and no false "no-signal")."""
    conf_text = "/srv/a.log {{\n    create\n    postrotate\n        {}\n    endscript\n}}\n"
    server = {"master": 4242, "pidfiles": set(), "pidfile": "/run/g.pid", "master_uid": 0, "worker_uid": None}
    server.update(worker_gids=[], root="", server="gunicorn")
    for script, expected in (
        ("killall -HUP gunicorn", ["signal-by-name", "signal-hup"]),
        ("for w in $(pgrep -P 4242); do kill -HUP $w; done", []),
        ("kill -USR2 4242", ["signal-no-reopen"]),
        ("kill -HUP 1", ["no-signal"]),  # another process: nothing tells this server
    ):
        conf = tmp_path / "c.conf"
        conf.write_text(conf_text.format(script))
        stanzas = check_logrotate.parse(str(conf))
        found = check_logrotate.review(stanzas, ["/srv/a.log"], server)
        assert sorted(f["problem"] for f in found) == expected, (script, found)
