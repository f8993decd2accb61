"""Placeholder: implemented by its own issue."""

import sys


def main(argv):
    print("uvicorn_usr1_patch diffs: not implemented yet", file=sys.stderr)
    return 2
