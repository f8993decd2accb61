"""Run the real logrotate binary on a test's logs, with configs modelled on the report's.

Each config gets its own state file and is run as `logrotate -f -s STATE CONF`, so nothing
outside the test's directory is read or written. The postrotate scripts signal gunicorn by
PID (from its --pid file), never by name.

Modes:
- "report": the report's stanza (create mode, compress, nodelaycompress, dateext with
  `dateformat -%Y-%m-%d-%s`, missingok, notifempty, one postrotate per file) with
  `kill -USR1 $(cat PIDFILE)` in place of `killall -s USR1 gunicorn`. dateext names carry the
  second, so two rotations in the same second would collide: the report mode is run once per
  test directory (`rotate()` waits for the next second if it is asked to run it again).
- "killall": the same, but the postrotate signals the master and then each of its workers
  (listed by the kernel in /proc/MASTER/task/MASTER/children: no procps needed), which is what
  `killall -s USR1 gunicorn` does. A
  worker that died after being listed (0.13.3-0.18.3 die on the master's USR1) is skipped.
- "numbered": for many rotations a second: numbered names (access.log.1, .2, ...) instead of
  dateext, and no compression. logrotate compresses (and unlinks) a rotated file right after
  the postrotate's `kill` returns (nodelaycompress), or at the next run (delaycompress): at
  5 rotations a second on a busy 2-core machine a worker can still be writing to it then, so
  lines would vanish with gzip's timing whatever the reopen does. Kept uncompressed, every
  line written anywhere stays countable, and the scenario measures the reopen itself. And
  `sharedscripts`: one USR1 once every file is renamed and created. With a postrotate per file,
  the USR1 sent after access.log makes every process reopen error.log too, which can land
  between logrotate's rename of error.log and its `create` (logrotate: "error creating output
  file error.log: File exists", exit 1), with any reopen, gunicorn's own included.
- "copytruncate": no signal at all; copies then truncates (the report's other mode).
"""

import glob
import os
import subprocess
import time

LOGROTATE = "logrotate"

_COMMON = """    missingok
    notifempty
    create 0644
    rotate 1000
"""

_MODES = {
    "report": """    size 1M
    compress
    nodelaycompress
    dateext
    dateformat -%Y-%m-%d-%s
    postrotate
        kill -USR1 $(cat {pidfile})
    endscript
""",
    "killall": """    size 1M
    compress
    nodelaycompress
    dateext
    dateformat -%Y-%m-%d-%s
    postrotate
        P=$(cat {pidfile}) && kill -USR1 $P &&
        for w in $(cat /proc/$P/task/$P/children); do kill -USR1 $w || true; done
    endscript
""",
    "numbered": """    nocompress
    sharedscripts
    postrotate
        kill -USR1 $(cat {pidfile})
    endscript
""",
    "copytruncate": """    copytruncate
    compress
    delaycompress
""",
}


class Logrotate(object):
    """One logrotate config + state file in `workdir`, rotating `logs` (absolute paths)."""

    def __init__(self, workdir, logs, pidfile, mode="report"):
        if mode not in _MODES:
            raise ValueError("mode must be one of {}".format(sorted(_MODES)))
        self.workdir = workdir
        self.logs = list(logs)
        self.mode = mode
        self.conf = os.path.join(workdir, "logrotate-{}.conf".format(mode))
        self.state = os.path.join(workdir, "logrotate-{}.state".format(mode))
        self.runs = 0
        self._last_second = None
        names = " ".join('"{}"'.format(p) for p in self.logs)
        with open(self.conf, "w") as f:
            f.write(names + " {\n" + _COMMON + _MODES[mode].format(pidfile=pidfile) + "}\n")
        # logrotate refuses configs writable by others, and directories writable by others
        os.chmod(self.conf, 0o644)
        os.chmod(workdir, 0o755)

    def rotate(self, timeout=30):
        """Run `logrotate -f -s STATE CONF` once; raise with its output if it fails."""
        if self.mode in ("report", "killall"):
            # dateext names carry the second: a second run in the same second would collide
            while self._last_second == int(time.time()):
                time.sleep(0.01)
            self._last_second = int(time.time())
        proc = subprocess.run(
            [LOGROTATE, "-f", "-s", self.state, self.conf],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise RuntimeError("logrotate failed ({}):\n{}".format(proc.returncode, proc.stdout))
        self.runs += 1
        return proc.stdout

    def rotated(self, log):
        """The rotated files of `log` (dateext or numbered, plain or .gz), oldest name first."""
        return sorted(set(glob.glob(log + "-*") + glob.glob(log + ".*")))


def config_text(path):
    with open(path) as f:
        return f.read()
