"""Run or validate every fenced code sample of the documentation, so that none can go stale.

    python -m tools.docs_check              # every sample of FILES; exit 1 on the first report
    python -m tools.docs_check docs/x.md    # the samples of some files only
    python -m tools.docs_check --list       # each sample's file, line and tag

tests/unit/test_docs.py runs the same checks, one test per sample (so `make test-fast` and
`make test` do). Every sample is found by FILES (globs: a new docs/*.md is picked up on its own),
and what is done with it is said by its fence's info string, the tag (docs/development.md):

    ```sh run            run with bash -euo pipefail in an empty temp dir: must exit 0
    ```sh run cwd=repo   the same, in the checkout (for read-only commands: pytest, make help)
    ```sh vendor         run in a temp dir holding a pristine copy of uvicorn 0.13.1 (VENDOR)
                         on `python`'s path and the checkout's patches/; the file's `sh vendor`
                         samples run one after the other in the same dir
    ```sh static         not runnable here (installs, root, servers, long runs): `bash -n`, and
                         every `make TARGET`, repository path and `python -m tools.X` it names
                         must exist
    ```console           `$ ` lines are run as in `sh run`; the lines after one are its expected
                         output (stdout and stderr): `...` alone on a line matches any lines,
                         `...` in a line any text
    ```python            compiled; ```python run: run with the checkout on PYTHONPATH
    ```logrotate         `logrotate -d` on it in a temp config (owners this machine lacks -> root)
    ```systemd           a unit file: known sections and keys, [Service] with ExecStart,
                         every Exec*= an absolute path
    ```ini logging       a logging config file (uvicorn's --log-config): logging.config.fileConfig
                         loads it, its /srv/app/log/ files made in a temp dir, and logs a line
    ```text              not code: prose or output that cannot be reproduced; must say why in
                         the tag, as `text: WHY`

`env=STACK` (tools/stacks.py STACKS, e.g. `console env=uvicorn-0.13.1`) puts that cached venv's
bin first on PATH, so `python` has that stack's releases and this package.

A sample with a tag of its own (```cron, ```ini app.timer) passes only when a test reads it
itself: a module under tests/ that names the sample's file (`check.md`) and quotes the tag
(`block("cron")`); `make test` runs that test. Any other tag, or no tag, is a failure, never a
skip: a sample nobody checks is a sample that goes stale.
"""

import argparse
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

FILES = ["README.md", "CHANGELOG.md", "docs/*.md", "bench/README.md", "sitecustomize_example/README.md"]
TIMEOUT = 120  # seconds for one sample
VENDOR = "uvicorn-0.13.1"  # the stack whose pristine uvicorn the `sh vendor` samples patch
FENCE = re.compile(r"^( {0,3}|\s*[-*] +|\s+)(`{3,}|~{3,})(.*)$")

KINDS = {
    ("sh", "run"),
    ("sh", "vendor"),
    ("sh", "static"),
    ("console", None),
    ("python", None),
    ("python", "run"),
    ("logrotate", None),
    ("systemd", None),
    ("ini", "logging"),
    ("text", None),
}
LOG_DIR = "/srv/app/log/"  # where the samples' log files live; a temp dir when they are checked


class Sample(object):
    def __init__(self, path, line, info, text):
        self.path = path  # relative to REPO
        self.line = line  # of the opening fence
        self.info = info
        self.text = text

    @property
    def where(self):
        return "{}:{}".format(self.path, self.line)

    def tag(self):
        """(language, mode, {attribute: value}, why) from the info string; ValueError when unknown."""
        info = self.info.strip()
        if info.startswith("text:"):
            why = info[len("text:") :].strip()
            if not why:
                raise ValueError("`text:` needs a reason after the colon")
            return "text", None, {}, why
        words = info.split()
        if not words:
            raise ValueError("no tag: every sample needs one (" + known_tags() + ")")
        language, mode, attrs = words[0], None, {}
        for word in words[1:]:
            if "=" in word:
                key, _, value = word.partition("=")
                attrs[key] = value
            elif mode is None:
                mode = word
            else:
                raise ValueError("two modes in {!r}".format(info))
        if (language, mode) not in KINDS or language == "text":
            raise ValueError("unknown tag {!r} (known: {})".format(info, known_tags()))
        unknown = set(attrs) - {"env", "cwd"}
        if unknown or attrs.get("cwd", "repo") != "repo":
            raise ValueError("unknown attribute in {!r}: only env=STACK and cwd=repo".format(info))
        return language, mode, attrs, None


def known_tags():
    names = sorted("{} {}".format(k, m).strip() if m else k for k, m in KINDS if k != "text")
    return ", ".join(names + ["text: WHY"])


def doc_files(patterns=None):
    found = []
    for pattern in patterns or FILES:
        for path in sorted(glob.glob(os.path.join(REPO, pattern))):
            rel = os.path.relpath(path, REPO)
            if rel not in found:
                found.append(rel)
    return found


def samples(path):
    """Every fenced block of the Markdown file `path` (relative to REPO), in order."""
    found = []
    with open(os.path.join(REPO, path)) as f:
        lines = f.read().splitlines()
    n = 0
    while n < len(lines):
        opening = FENCE.match(lines[n])
        if not opening:
            n += 1
            continue
        indent, fence, info = len(opening.group(1)), opening.group(2), opening.group(3)
        body, end = [], n + 1
        while end < len(lines):
            closing = lines[end].strip()
            if closing.startswith(fence[0] * len(fence)) and not closing.strip(fence[0]):
                break
            line = lines[end]
            body.append(line[indent:] if line[:indent].strip() == "" else line)
            end += 1
        if end == len(lines):
            raise ValueError("{}:{}: the fence is never closed".format(path, n + 1))
        found.append(Sample(path, n + 1, info, "\n".join(body) + "\n"))
        n = end + 1
    return found


def all_samples(patterns=None):
    return [s for path in doc_files(patterns) for s in samples(path)]


# -- running -----------------------------------------------------------------------------------
def _env(attrs, extra_path=None):
    env = dict(os.environ)
    env.pop("UVICORN_USR1_PATCH", None)
    env["PYTHONPATH"] = REPO
    path = [os.path.dirname(sys.executable)]
    if attrs.get("env"):
        from tools import stacks

        name = attrs["env"]
        if name not in stacks.STACKS:
            raise ValueError(
                "env={}: not a stack of tools/stacks.py ({})".format(name, ", ".join(stacks.STACKS))
            )
        path.insert(0, stacks.venv(name).bin)
        env.pop("PYTHONPATH")  # the venv's own installed package, as a user has it
    if extra_path:
        path.insert(0, extra_path)
    env["PATH"] = os.pathsep.join(path + [env.get("PATH", "/usr/bin:/bin")])
    return env


def _bash(script, cwd, env):
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        universal_newlines=True,
        timeout=TIMEOUT,
    )
    return proc.returncode, proc.stdout


def run_sh(sample, attrs):
    tmp = tempfile.mkdtemp(prefix="docs-check-")
    try:
        rc, out = _bash(sample.text, REPO if attrs.get("cwd") else tmp, _env(attrs))
        return [] if rc == 0 else ["exit {}:\n{}".format(rc, out)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ellipsis_match(expected, actual):
    """doctest's ELLIPSIS, by line: `...` alone matches any lines, `...` in a line any text."""
    parts = []
    for line in expected.splitlines():
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*?".join(re.escape(p) for p in line.rstrip().split("...")) + r"[ \t]*\n")
    return re.match("".join(parts) + r"\Z", actual if actual.endswith("\n") or not actual else actual + "\n")


def run_console(sample, attrs):
    commands, current = [], None
    for line in sample.text.splitlines():
        if line.startswith("$ "):
            current = [line[2:], []]
            commands.append(current)
        elif current is None:
            return ["a console sample starts with a `$ ` command line"]
        else:
            current[1].append(line)
    problems = []
    tmp = tempfile.mkdtemp(prefix="docs-check-")
    try:
        env = _env(attrs)
        for command, expected in commands:
            _, out = _bash(command, REPO if attrs.get("cwd") else tmp, env)
            want = "\n".join(expected) + ("\n" if expected else "")
            if not ellipsis_match(want, out):
                problems.append("`{}` printed:\n{}\nexpected:\n{}".format(command, out, want))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return problems


def run_python(sample, mode):
    try:
        compile(sample.text, sample.where, "exec")
    except SyntaxError as err:
        return ["does not compile: {}".format(err)]
    if mode != "run":
        return []
    proc = subprocess.run(
        [sys.executable, "-c", sample.text],
        env=_env({}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        universal_newlines=True,
        timeout=TIMEOUT,
    )
    return [] if proc.returncode == 0 else ["exit {}:\n{}".format(proc.returncode, proc.stdout)]


# -- sh static ------------------------------------------------------------------------------------
REPO_PATH = re.compile(r"(?<![\w/.-])((?:tools|bench|tests|docs|patches|uvicorn_usr1_patch|\.ci)/[\w./-]*\w)")


def make_targets():
    with open(os.path.join(REPO, "Makefile")) as f:
        return set(re.findall(r"^([a-zA-Z][\w-]*):", f.read(), re.M))


def check_static(sample):
    problems = []
    proc = subprocess.run(
        ["bash", "-n"],
        input=sample.text,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        universal_newlines=True,
    )
    if proc.returncode:
        problems.append("bash -n: " + proc.stdout)
    code = "\n".join(line.split(" #", 1)[0] for line in sample.text.splitlines())
    targets = make_targets()
    for target in re.findall(r"\bmake\s+([a-z][\w-]*)", code):
        if target not in targets:
            problems.append("`make {}`: no such rule in the Makefile".format(target))
    for path in REPO_PATH.findall(code):
        if not os.path.exists(os.path.join(REPO, path)):
            problems.append("{}: no such file in the repository".format(path))
    for module in re.findall(r"python\S*\s+-m\s+(tools\.[\w.]+)", code):
        base = os.path.join(REPO, *module.split("."))
        if not (os.path.exists(base + ".py") or os.path.exists(os.path.join(base, "__main__.py"))):
            problems.append("python -m {}: no such module".format(module))
    return problems


# -- logrotate and systemd ------------------------------------------------------------------------
def _known(kind, name):
    import grp
    import pwd

    try:
        (pwd.getpwnam if kind == "user" else grp.getgrnam)(name)
        return True
    except KeyError:
        return name.isdigit()


def logrotate_config(text):
    """The stanza as a config this machine's logrotate can read: unknown owners become root."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if words and words[0] in ("create", "su"):
            args = words[1:]
            start = 1 if args and re.match(r"^[0-7]{3,4}$", args[0]) and words[0] == "create" else 0
            for i in range(start, len(args)):
                kind = "user" if i == start else "group"
                if not _known(kind, args[i]):
                    args[i] = "root"
            line = line[: len(line) - len(line.lstrip())] + " ".join([words[0]] + args)
        out.append(line)
    return "\n".join(out) + "\n"


def check_logrotate(sample):
    tmp = tempfile.mkdtemp(prefix="docs-check-")
    try:
        conf = os.path.join(tmp, "sample.conf")
        with open(conf, "w") as f:
            f.write(logrotate_config(sample.text))
        os.chmod(conf, 0o644)
        exe = shutil.which("logrotate") or "/usr/sbin/logrotate"
        proc = subprocess.run(
            [exe, "-d", "-s", os.path.join(tmp, "state"), conf],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            universal_newlines=True,
            timeout=TIMEOUT,
        )
        errors = [line for line in proc.stdout.splitlines() if line.startswith("error:")]
        if proc.returncode or errors:
            return ["logrotate -d (exit {}):\n{}".format(proc.returncode, "\n".join(errors) or proc.stdout)]
        if "rotating pattern" not in proc.stdout:
            return ["logrotate -d read no stanza:\n" + proc.stdout]
        return []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


SYSTEMD_KEYS = {
    "Unit": {
        "Description",
        "Documentation",
        "After",
        "Before",
        "Wants",
        "Requires",
        "BindsTo",
        "PartOf",
        "Conflicts",
        "ConditionPathExists",
        "StartLimitIntervalSec",
        "StartLimitBurst",
    },
    "Service": {
        "Type",
        "User",
        "Group",
        "WorkingDirectory",
        "Environment",
        "EnvironmentFile",
        "ExecStartPre",
        "ExecStart",
        "ExecStartPost",
        "ExecReload",
        "ExecStop",
        "ExecStopPost",
        "PIDFile",
        "KillMode",
        "KillSignal",
        "TimeoutStopSec",
        "TimeoutStartSec",
        "Restart",
        "RestartSec",
        "RuntimeDirectory",
        "LogsDirectory",
        "StandardOutput",
        "StandardError",
        "NotifyAccess",
        "PrivateTmp",
        "NoNewPrivileges",
        "ProtectSystem",
        "ReadWritePaths",
        "LimitNOFILE",
    },
    "Install": {"WantedBy", "RequiredBy", "Alias", "Also"},
}


def check_systemd(sample):
    problems, section, keys = [], None, {}
    lines = sample.text.splitlines()
    n = 0
    while n < len(lines):
        line = lines[n].strip()
        while line.endswith("\\") and n + 1 < len(lines):  # a continued value
            n += 1
            line = line[:-1] + " " + lines[n].strip()
        n += 1
        if not line or line[0] in "#;":
            continue
        header = re.match(r"^\[(\w+)\]$", line)
        if header:
            section = header.group(1)
            if section not in SYSTEMD_KEYS:
                problems.append("[{}]: not a section of a service unit".format(section))
            keys.setdefault(section, {})
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or section is None:
            problems.append("{!r}: not `Key=value` inside a [Section]".format(line))
            continue
        if section in SYSTEMD_KEYS and key not in SYSTEMD_KEYS[section]:
            problems.append("{}: not a key this check knows in [{}] (a typo?)".format(key, section))
        keys[section].setdefault(key, []).append(value.strip())
        if key.startswith("Exec") and value.strip():
            command = value.strip().lstrip("-@:+!")
            if not command.startswith("/"):
                problems.append("{}={}: systemd needs an absolute path".format(key, value.strip()))
    if "ExecStart" not in keys.get("Service", {}):
        problems.append("no [Service] ExecStart=")
    return problems


def check_logging_ini(sample):
    tmp = tempfile.mkdtemp(prefix="docs-check-")
    try:
        conf = os.path.join(tmp, "logging.ini")
        with open(conf, "w") as f:
            f.write(sample.text.replace(LOG_DIR, tmp + "/"))
        code = (
            "import logging, logging.config, sys\n"
            "logging.config.fileConfig(sys.argv[1], disable_existing_loggers=False)\n"
            "for name in ('', 'uvicorn.error', 'uvicorn.access'):\n"
            "    logging.getLogger(name).warning('docs-check')\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code, conf],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            universal_newlines=True,
            timeout=TIMEOUT,
        )
        if proc.returncode or proc.stdout.strip():
            return ["logging.config.fileConfig (exit {}):\n{}".format(proc.returncode, proc.stdout)]
        logs = [n for n in os.listdir(tmp) if n.endswith(".log")]
        if not logs or not all(os.path.getsize(os.path.join(tmp, n)) for n in logs):
            return ["no log file under {} got a line: {}".format(LOG_DIR, logs)]
        return []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- vendor ---------------------------------------------------------------------------------------
class VendorDir(object):
    """A temp dir: clone/patches -> the checkout's patches/, site/uvicorn a pristine copy of
    uvicorn 0.13.1 (from the stack's cached venv), bin/python that stack's interpreter with
    site/ first on its path. `states` records workers.py's sha256 after each sample."""

    def __init__(self):
        from tools import make_patches, stacks

        self.root = tempfile.mkdtemp(prefix="docs-check-vendor-")
        venv = stacks.venv(VENDOR)
        source = os.path.join(venv.site_packages(), "uvicorn")
        self.site = os.path.join(self.root, "site")
        shutil.copytree(
            source, os.path.join(self.site, "uvicorn"), ignore=shutil.ignore_patterns("__pycache__")
        )
        self.workers = os.path.join(self.site, "uvicorn", "workers.py")
        self.pristine = self.sha()
        if self.pristine not in make_patches.WORKERS_FILES:
            raise RuntimeError("{}'s uvicorn/workers.py is not a pristine release file".format(venv.path))
        self.clone = os.path.join(self.root, "clone")
        os.makedirs(self.clone)
        os.symlink(os.path.join(REPO, "patches"), os.path.join(self.clone, "patches"))
        self.bin = os.path.join(self.root, "bin")
        os.makedirs(self.bin)
        wrapper = os.path.join(self.bin, "python")
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\nPYTHONPATH="{}" exec "{}" "$@"\n'.format(self.site, venv.python))
        os.chmod(wrapper, 0o755)
        self.states = []

    def sha(self):
        with open(self.workers, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    def run(self, sample):
        env = _env({}, extra_path=self.bin)
        env.pop("PYTHONPATH", None)
        env["UVICORN_USR1_PATCH"] = "0"
        rc, out = _bash(sample.text, self.clone, env)
        self.states.append(self.sha())
        return [] if rc == 0 else ["exit {}:\n{}".format(rc, out)]

    def close(self):
        shutil.rmtree(self.root, ignore_errors=True)


SELF = os.path.join("tests", "unit", "test_docs.py")


def read_by(sample):
    """The test modules that read `sample` themselves: each names its file and quotes its tag."""
    info, name = sample.info.strip(), os.path.basename(sample.path)
    if not info:
        return []
    found = []
    for path in sorted(glob.glob(os.path.join(REPO, "tests", "**", "*.py"), recursive=True)):
        rel = os.path.relpath(path, REPO)
        if rel == SELF:
            continue
        with open(path) as f:
            text = f.read()
        if name in text and ('"{}"'.format(info) in text or "'{}'".format(info) in text):
            found.append(rel)
    return found


def known(sample):
    try:
        sample.tag()
        return True
    except ValueError:
        return False


def check(sample, vendor=None):
    """The problems of one sample ([] when it runs or validates)."""
    try:
        language, mode, attrs, _ = sample.tag()
    except ValueError as err:
        if read_by(sample):
            return []
        return [str(err) + "; or a test under tests/ that names the file and quotes the tag reads it"]
    if language == "text":
        return []
    if language == "sh" and mode == "run":
        return run_sh(sample, attrs)
    if language == "sh" and mode == "static":
        return check_static(sample)
    if language == "sh" and mode == "vendor":
        own = vendor is None
        vendor = vendor or VendorDir()
        try:
            return vendor.run(sample)
        finally:
            if own:
                vendor.close()
    if language == "console":
        return run_console(sample, attrs)
    if language == "python":
        return run_python(sample, mode)
    if language == "logrotate":
        return check_logrotate(sample)
    if language == "systemd":
        return check_systemd(sample)
    if language == "ini":
        return check_logging_ini(sample)
    raise AssertionError((language, mode))  # KINDS and this function disagree


def check_file(path):
    """[(sample, problems)] for every sample of `path`; the `sh vendor` ones share one dir."""
    found = samples(path)
    vendor = None
    results = []
    try:
        for sample in found:
            if sample.info.split()[:2] == ["sh", "vendor"] and vendor is None:
                vendor = VendorDir()
            results.append((sample, check(sample, vendor)))
    finally:
        if vendor is not None:
            vendor.close()
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.docs_check", description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", help="Markdown files (default: {})".format(" ".join(FILES)))
    parser.add_argument("--list", action="store_true", help="list the samples and their tags")
    args = parser.parse_args(argv)
    files = doc_files(args.files or None)
    if args.list:
        for path in files:
            for sample in samples(path):
                print("{:<32} {}".format(sample.where, sample.info))
        return 0
    failed = count = 0
    for path in files:
        for sample, problems in check_file(path):
            count += 1
            if not problems and not known(sample):
                print("{} ({}): read by {}".format(sample.where, sample.info, ", ".join(read_by(sample))))
            if problems:
                failed += 1
                print("FAIL {} ({}):\n  {}".format(sample.where, sample.info, "\n  ".join(problems)))
    print("docs-check: {} samples in {} files, {} failed".format(count, len(files), failed))
    return 1 if failed or not count else 0


if __name__ == "__main__":
    sys.exit(main())
