"""The real stacks the core tests run on: one per behaviour of an unpatched UvicornWorker."""

# name -> (python, requirements, worker class, what USR1 does unpatched, as signal_probe names it)
STACKS = {
    # the report: USR1 is left to the master's inherited handler, logs never reopened
    "uvicorn-0.13.1": (
        "3.8",
        ["gunicorn==20.0.4", "uvicorn[standard]==0.13.1", "uvloop==0.14.0"],
        "uvicorn.workers.UvicornWorker",
        "master",
    ),
    # signals reset to SIG_DFL: USR1 kills the worker
    "uvicorn-0.18.3": (
        "3.10",
        ["gunicorn==20.1.0", "uvicorn[standard]==0.18.3"],
        "uvicorn.workers.UvicornWorker",
        "default",
    ),
    # synchronous reopen inside the signal handler (issue 9's second wrong-owner stack)
    "uvicorn-0.29.0": (
        "3.11",
        ["gunicorn==23.0.0", "uvicorn[standard]==0.29.0"],
        "uvicorn.workers.UvicornWorker",
        "sync",
    ),
    "uvicorn-0.54.0": (
        "3.12",
        ["gunicorn==23.0.0", "uvicorn[standard]==0.54.0"],
        "uvicorn.workers.UvicornWorker",
        "sync",
    ),
    "uvicorn-worker-0.4.0": (
        "3.12",
        ["gunicorn==27.0.1", "uvicorn-worker==0.4.0", "uvloop", "httptools"],
        "uvicorn_worker.UvicornWorker",
        "sync",
    ),
}


def venv(name):
    from tools import venvs

    python, requirements, _, _ = STACKS[name]
    return venvs.ensure(python, requirements)


def shared_venv(name):
    """The stack's venv under a directory `nobody` can read (gunicorn --user nobody)."""
    from tools import venvs

    python, requirements, _, _ = STACKS[name]
    return venvs.ensure_shared(python, requirements)
