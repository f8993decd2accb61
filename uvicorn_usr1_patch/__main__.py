"""python -m uvicorn_usr1_patch [doctor|diff|check] ...

doctor (the default): is this environment's UvicornWorker going to reopen logs safely?
diff:   print the versioned patch for the uvicorn installed here.
check:  inspect a running gunicorn: stale log files, what USR1 does, its logrotate config.
"""

import sys

COMMANDS = {
    "doctor": "uvicorn_usr1_patch.doctor",
    "diff": "uvicorn_usr1_patch.diffs",
    "check": "uvicorn_usr1_patch.check",
}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    command = "doctor"
    if argv and argv[0] in COMMANDS:
        command = argv.pop(0)
    elif argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    module = __import__(COMMANDS[command], fromlist=["main"])
    return module.main(argv)


if __name__ == "__main__":
    sys.exit(main())
