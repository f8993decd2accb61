"""python -m uvicorn_usr1_patch (or uvicorn-usr1-patch) [doctor|diff|check] ... | --version

doctor (the default): is this environment's UvicornWorker going to reopen logs safely?
diff:   print the versioned patch for the uvicorn installed here (or for `diff VERSION`).
check:  inspect a running gunicorn: stale log files, what USR1 does, its logrotate config.

Each command takes --help. Exit status 2 with one line on stderr for a command that does not exist.
"""

import os
import platform
import sys

COMMANDS = {
    "doctor": "uvicorn_usr1_patch.doctor",
    "diff": "uvicorn_usr1_patch.diffs",
    "check": "uvicorn_usr1_patch.check",
}
PROG = "uvicorn-usr1-patch"


def version_line():
    import uvicorn_usr1_patch

    return "{} {} (Python {}, {})".format(
        PROG, uvicorn_usr1_patch.__version__, platform.python_version(), platform.platform()
    )


def _quiet_broken_pipe():
    """A reader that went away (`| head`): no traceback, and the interpreter's last flush of stdout
    at exit goes to /dev/null instead of raising again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main(argv=None):
    try:
        status = _dispatch(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_broken_pipe()
        return 1
    return status


def _dispatch(argv):
    command = "doctor"
    if argv and argv[0] in COMMANDS:
        command = argv.pop(0)
    elif argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    elif argv and argv[0] in ("-V", "--version"):
        print(version_line())
        return 0
    elif argv and not argv[0].startswith("-"):
        print(
            "{}: unknown command {!r} (choose from {}; see --help)".format(
                PROG, argv[0], ", ".join(sorted(COMMANDS))
            ),
            file=sys.stderr,
        )
        return 2
    module = __import__(COMMANDS[command], fromlist=["main"])
    return module.main(argv)


def console_script():
    """The `uvicorn-usr1-patch` command (setup.cfg's console_scripts)."""
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
