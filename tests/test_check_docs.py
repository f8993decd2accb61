"""docs/check.md cannot go stale: its tables, JSON keys, sample lines, cron line, systemd units and
Nagios command are read from the page and held to (or run against) real `check` runs on gunicorn.
The restart recipe (```sh usr2-term) runs in tests/test_doctor.py."""

import json
import os
import re
import shlex
import shutil
import subprocess

import pytest
import stacks
from check_cli import NAGIOS_EXIT, TEXT_EXIT, prometheus_values, run_json

from tools.gunicorn_run import Gunicorn
from uvicorn_usr1_patch import check_result

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(REPO, "docs", "check.md")
# the paths the samples use, and what a test puts in their place
VENV = "/srv/app/venv"
PIDFILE = "/run/gunicorn.pid"
TEXTFILE_DIR = "/var/lib/node_exporter/textfile_collector"


def code_blocks():
    """{info string: text} of the page's fenced blocks (info: "json", "ini NAME.service", ...)."""
    with open(PAGE) as f:
        page = f.read()
    found = {}
    for info, body in re.findall(r"^```([^\n`]*)\n(.*?)^```$", page, re.M | re.S):
        assert info not in found, "two blocks are both ```" + info
        found[info.strip()] = body
    return found


def block(info):
    return code_blocks()[info]


def tables():
    """Each markdown table of the page as a list of rows (lists of cells), header first."""
    with open(PAGE) as f:
        page = f.read()
    found = []
    for table in re.findall(r"((?:^\|.*\|\n)+)", page, re.M):
        rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.strip().splitlines()]
        found.append([r for r in rows if not set("".join(r)) <= set("-: ")])
    return found


def test_exit_tables_are_the_code_s():
    exit_tables = [t for t in tables() if t[0][:2] == ["status", "exit"]]
    assert len(exit_tables) == 2
    for table, output in zip(exit_tables, ("text", "nagios")):
        assert {row[0]: int(row[1]) for row in table[1:]} == check_result.EXIT_CODES[output]
    assert check_result.EXIT_CODES["text"] == TEXT_EXIT and check_result.EXIT_CODES["nagios"] == NAGIOS_EXIT


def produced_kinds():
    """Every finding kind the code can produce, read from its source."""
    kinds = set()
    for name in ("check_result.py", "check_logrotate.py", "check.py"):
        with open(os.path.join(REPO, "uvicorn_usr1_patch", name)) as f:
            source = f.read()
        prefix = "logrotate-" if name != "check_result.py" else ""
        for kind in re.findall(r'_finding\(\s*"([a-z-]+)"', source) + re.findall(
            r'"problem": "([a-z-]+)"', source
        ):
            if not kind.endswith("-"):  # "signal-" + name, "logrotate-" + problem: below, and above
                kinds.add(prefix + kind)
        kinds.update(re.findall(r'"((?:usr1)-[a-z-]+)"', source) if name == "check_result.py" else [])
    # "signal-" + the signal's name: the ones whose effect works (check_logrotate.signal_effect)
    kinds.update({"logrotate-signal-hup", "logrotate-signal-restart"})
    kinds.discard("logrotate-no-result")
    return kinds


def test_every_finding_kind_is_documented():
    (kinds,) = [t for t in tables() if t[0] == ["kind", "severity", "what"]]
    documented = {row[0].strip("`"): row[1] for row in kinds[1:]}
    assert set(documented) == produced_kinds()
    assert set(documented.values()) <= set(check_result.SEVERITY_ORDER) | {"unknown"}


def test_prometheus_sample_is_what_check_writes(tmp_path):
    sample = tmp_path / "sample.prom"
    sample.write_text(block("text prometheus"))
    metrics = prometheus_values(sample)
    assert sorted(metrics) == sorted(check_result.METRIC_PREFIX + name for name, _ in check_result.GAUGES)
    doc = check_result.document(
        {"processes": [{}] * 3, "workers": [1, 2], "master": 4242},
        [],
        target={"master_pid": 4242, "pidfile": PIDFILE},
    )
    assert check_result.prometheus_text(doc) == block("text prometheus")


def test_nagios_sample_lines_have_the_plugin_shape():
    lines = block("text nagios-output").splitlines()
    assert [line.split()[1] for line in lines] == ["OK", "WARNING", "CRITICAL", "UNKNOWN"]
    for line in lines:
        assert re.match(r"^USR1 (OK|WARNING|CRITICAL|UNKNOWN) - [^|]+( \| (\w+=\d+ ?)+)?$", line), line


# -- against a real gunicorn ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def server():
    """A patched gunicorn; the samples' venv is its venv (it has the uvicorn-usr1-patch script)."""
    workdir = os.path.join(str(os.environ.get("TMPDIR", "/tmp")), "check-docs-{}".format(os.getpid()))
    venv = stacks.venv("uvicorn-0.54.0")
    g = Gunicorn(venv, workdir).start()
    yield g
    g.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def localize(text, g, textfile_dir):
    """A sample with this test's venv, pidfile and textfile directory in place of the page's."""
    return text.replace(VENV, g.venv.path).replace(PIDFILE, g.pidfile).replace(TEXTFILE_DIR, textfile_dir)


def run_shell(command):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return subprocess.run(["sh", "-c", command], env=env, timeout=60).returncode


def with_stale_file(g):
    os.rename(g.access_log, g.access_log + ".2")  # renamed, not re-created: critical


def reopened(g):
    code, result = run_json("--pidfile", g.pidfile, "--reopen")
    assert code == 0, result["findings"]


@pytest.mark.e2e
def test_json_sample_keys_are_the_documents(server, tmp_path):
    sample = json.loads(block("json"))
    code, doc = run_json("--pidfile", server.pidfile)
    assert code == 0 and set(sample) == set(doc)
    assert set(sample["counts"]) == set(doc["counts"]) and set(sample["target"]) == set(doc["target"])
    with_stale_file(server)
    try:
        code, doc = run_json("--pidfile", server.pidfile)
        (finding,) = doc["findings"]
        assert set(sample["findings"][0]) == set(finding) and finding["kind"] == sample["findings"][0]["kind"]
        assert (doc["status"], doc["exit"]) == (sample["status"], sample["exit"])
        assert finding["text"] == sample["findings"][0]["text"].replace(
            "/srv/app/log", server.workdir
        ).replace("4242, 4243, 4244", ", ".join(map(str, [server.master_pid] + server.worker_pids())))
    finally:
        reopened(server)
    # the no-result document: the same head, no report
    code, doc = run_json("--pidfile", str(tmp_path / "missing.pid"))
    assert {"schema", "status", "exit", "summary", "findings", "counts", "target", "ok"} == set(doc)


@pytest.mark.e2e
def test_cron_line_runs(server, tmp_path):
    line = block("cron").strip()
    fields = line.split(None, 6)
    assert len(fields) == 7 and fields[5] == "root"  # /etc/cron.d: five times, the user, the command
    command = localize(fields[6], server, str(tmp_path))
    textfile = os.path.join(str(tmp_path), "uvicorn_usr1_patch.prom")
    assert run_shell(command) == 0
    assert prometheus_values(textfile)["uvicorn_usr1_patch_stale_files"][1] == 0
    with_stale_file(server)
    try:
        assert run_shell(command) == NAGIOS_EXIT["critical"]
        metrics = prometheus_values(textfile)
        assert metrics["uvicorn_usr1_patch_stale_files"][1] == 1
        assert metrics["uvicorn_usr1_patch_check_success"] == (
            {"master_pid": str(server.master_pid), "pidfile": server.pidfile},
            1,
        )
    finally:
        reopened(server)


def unit_file(info):
    """{section: {key: value}} of an ```ini unit block (systemd's syntax: # comments, key=value)."""
    sections, current = {}, None
    for raw in block(info).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current[key] = value
    return sections


@pytest.mark.e2e
def test_systemd_units(server, tmp_path):
    service = unit_file("ini uvicorn-usr1-patch-check.service")
    timer = unit_file("ini uvicorn-usr1-patch-check.timer")
    assert service["Service"]["Type"] == "oneshot"
    assert set(timer["Timer"]) >= {"OnUnitActiveSec"} and timer["Install"]["WantedBy"] == "timers.target"
    ok = {0} | {int(s) for s in service["Service"]["SuccessExitStatus"].split()}
    command = localize(service["Service"]["ExecStart"], server, str(tmp_path))
    textfile = os.path.join(str(tmp_path), "uvicorn_usr1_patch.prom")
    assert run_shell(command) == 0
    with_stale_file(server)
    try:
        code = run_shell(command + " >/dev/null")
        assert code in ok and code == TEXT_EXIT["critical"]
        assert prometheus_values(textfile)["uvicorn_usr1_patch_stale_files"][1] == 1
    finally:
        reopened(server)
    assert (
        run_shell(
            localize(service["Service"]["ExecStart"], server, str(tmp_path)).replace(
                server.pidfile, str(tmp_path / "missing.pid")
            )
            + " 2>/dev/null"
        )
        in ok
    )  # no result: still a success
    assert prometheus_values(textfile)["uvicorn_usr1_patch_check_success"][1] == 0
    # systemd's own reading of the two files, where it can run here
    analyze = shutil.which("systemd-analyze")
    if analyze:
        units = tmp_path / "units"
        units.mkdir()
        (units / "uvicorn-usr1-patch-check.service").write_text(
            localize(block("ini uvicorn-usr1-patch-check.service"), server, str(tmp_path))
        )
        (units / "uvicorn-usr1-patch-check.timer").write_text(block("ini uvicorn-usr1-patch-check.timer"))
        proc = subprocess.run(
            [
                analyze,
                "verify",
                str(units / "uvicorn-usr1-patch-check.timer"),
                str(units / "uvicorn-usr1-patch-check.service"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            universal_newlines=True,
            timeout=60,
        )
        ours = [line for line in proc.stdout.splitlines() if "uvicorn-usr1-patch-check" in line]
        assert ours == [], proc.stdout


@pytest.mark.e2e
def test_nagios_command_definition_runs(server):
    (command_line,) = re.findall(r"^\s*command_line\s+(.+)$", block("nagios"), re.M)
    command = localize(command_line.replace("$ARG1$", shlex.quote(PIDFILE)), server, "/nonexistent")
    assert run_shell(command + " >/dev/null") == NAGIOS_EXIT["ok"]


@pytest.mark.e2e
def test_command_line_samples_run(server):
    """Each line of ```sh cli, with the venv's uvicorn-usr1-patch first on PATH: exit 0, output, and
    nothing on stderr (a reader that stops early, `| head`, gives no BrokenPipe traceback)."""
    env = dict(os.environ, PATH=server.venv.bin + ":" + os.environ["PATH"])
    env.pop("PYTHONPATH", None)
    for line in block("sh cli").strip().splitlines():
        proc = subprocess.run(
            ["bash", "-c", line],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
            timeout=60,
        )
        assert (proc.returncode, proc.stderr) == (0, ""), (line, proc.stderr)
        assert proc.stdout.strip(), line
