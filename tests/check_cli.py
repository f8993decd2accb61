"""`python -m uvicorn_usr1_patch check` run as an operator runs it, for tests/test_check*.py."""

import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_check(*args, timeout=60):
    """The CLI as an operator runs it, from this (tools') Python, not the target's venv."""
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, "-m", "uvicorn_usr1_patch", "check"] + [str(a) for a in args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=timeout,
    )
    out, err = (proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8"))  # UTF-8 or it fails here
    return proc.returncode, out, err


def run_json(*args):
    code, out, err = run_check("--json", *args)
    assert err == "", err
    return code, json.loads(out)


def assert_one_line_error(code, out, err, needle):
    assert code == 2, (code, out, err)
    assert out == ""
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err, err


def timed_check(*args):
    start = time.monotonic()
    result = run_check(*args, timeout=10)
    return result, time.monotonic() - start


NAGIOS_EXIT = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
TEXT_EXIT = {"ok": 0, "warning": 1, "critical": 1, "unknown": 2}


def prometheus_values(path):
    """{metric name: (labels, value)} of a textfile, read by prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    with open(str(path)) as f:
        text = f.read()
    found = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge", family
        for sample in family.samples:
            assert sample.name not in found, sample
            found[sample.name] = (sample.labels, sample.value)
    return found


def every_format(textfile, *args):
    """Run check as text, --json, --format nagios (each also writing the Prometheus textfile) and
    hold them to one another: one status, each format's exit status, the same counts. Returns the
    JSON document."""
    code, doc = run_json(*args)
    assert (code, doc["exit"]) == (TEXT_EXIT[doc["status"]],) * 2, doc
    assert doc["schema"] == 1 and doc["ok"] == (doc["status"] == "ok")
    for finding in doc["findings"]:
        assert set(finding) >= {"kind", "severity", "path", "line", "fix", "text"}, finding
    status = doc["status"]
    text_code, text, err = run_check("--prometheus-textfile", textfile, *args)
    assert text_code == TEXT_EXIT[status], (text, err)
    if status == "unknown":
        assert text == "" and len(err.strip().splitlines()) == 1 and doc["summary"] in err, err
    else:
        assert text.splitlines()[-1] == "result: {} - {}".format(status.upper(), doc["summary"]), text
    nagios_code, line, err = run_check("--format", "nagios", *args)
    assert (nagios_code, err) == (NAGIOS_EXIT[status], ""), (line, err)
    assert len(line.splitlines()) == 1 and line.startswith(
        "USR1 {} - {}".format(status.upper(), doc["summary"])
    )
    metrics = prometheus_values(textfile)
    labels, success = metrics["uvicorn_usr1_patch_check_success"]
    assert success == (0 if status == "unknown" else 1)
    if status == "unknown":
        assert set(metrics) == {"uvicorn_usr1_patch_check_success"}
        assert " | " not in line  # no performance data for a result that was not measured
        return doc
    perf = dict(pair.split("=") for pair in line.split(" | ")[1].split())
    for name in ("stale_files", "workers_not_reopening", "logrotate_findings"):
        assert metrics["uvicorn_usr1_patch_" + name] == (labels, doc["counts"][name]), metrics
        assert int(perf[name]) == doc["counts"][name], line
    assert labels["master_pid"] == str(doc["target"]["master_pid"]) == str(doc["master"])
    return doc
