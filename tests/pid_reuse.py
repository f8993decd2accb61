"""Run inside a fresh PID namespace (`unshare --pid --fork --mount-proc`): a recycled PID never gets
check's SIGUSR1.

    python tests/pid_reuse.py VENV WORKDIR  -> one JSON line on stdout

Starts a real gunicorn, verifies its master with check_target.verify_master, stops it (the master
exits and is reaped), then makes the next fork take the master's PID by writing PID-1 to
/proc/sys/kernel/ns_last_pid (only this program forks in the namespace, so that is deterministic),
and runs a decoy there that records every SIGUSR1 and SIGUSR2 it gets. Then check_target.send_usr1
on the verified master must refuse. SIGUSR2 from us afterwards is the marker: standard signals
pending together are handled lowest number first, so a USR1 sent before it would be logged before
it. The control: a plain kill(PID, SIGUSR1), what check did before, reaches the decoy.
Under Python 3.9+ the refusal comes from the pidfd; under 3.8 from the start-time check.
"""

import json
import os
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def decoy(marker):
    def note(signum, frame):
        with open(marker, "a") as f:
            f.write(signal.Signals(signum).name + "\n")
        if signum == signal.SIGTERM:
            sys.exit(0)

    for signum in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM):
        signal.signal(signum, note)
    with open(marker, "a") as f:
        f.write("ready\n")
    deadline = time.monotonic() + 60  # bounded: the namespace ends with the test anyway
    while time.monotonic() < deadline:
        signal.pause()


def lines(marker):
    try:
        with open(marker) as f:
            return f.read().split()
    except FileNotFoundError:  # the decoy has not written yet
        return []


def main(venv_path, workdir):
    sys.path[:0] = [REPO]
    from tools.gunicorn_run import Gunicorn, wait_for
    from tools.venvs import Venv
    from uvicorn_usr1_patch import check_target

    gunicorn = Gunicorn(Venv(venv_path), workdir).start()
    old = gunicorn.master_pid
    master = check_target.verify_master(old)
    gunicorn.stop()  # SIGTERM, then waited for: the PID is free

    marker = os.path.join(workdir, "decoy.log")
    for _ in range(5):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(old - 1))
        child = subprocess.Popen([sys.executable, __file__, "decoy", marker])
        if child.pid == old:
            break
        child.kill()
        child.wait()
    else:
        raise SystemExit("could not recycle pid {}".format(old))
    wait_for(lambda: "ready" in lines(marker), 10, what="the decoy to install its handlers")

    try:
        check_target.send_usr1(master)
        refusal = None
    except check_target.CheckError as err:
        refusal = str(err)
    os.kill(child.pid, signal.SIGUSR2)  # the decoy is ours: we started it
    wait_for(lambda: lines(marker).count("SIGUSR2") == 1, 10, what="the decoy's SIGUSR2")
    after_check = lines(marker)

    os.kill(old, signal.SIGUSR1)  # the control: a kill by PID, as before
    os.kill(child.pid, signal.SIGUSR2)
    wait_for(lambda: lines(marker).count("SIGUSR2") == 2, 10, what="the decoy's second SIGUSR2")
    control = lines(marker)
    child.terminate()
    child.wait(10)
    print(
        json.dumps(
            {
                "pid": old,
                "decoy_pid": child.pid,
                "pidfd": master.pidfd is not None,
                "refusal": refusal,
                "after_check": after_check,
                "control": control,
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1] == "decoy":
        decoy(sys.argv[2])
    else:
        main(sys.argv[1], sys.argv[2])
