"""Placeholder: implemented by its own issue."""

import sys


def main(argv):
    print("uvicorn_usr1_patch livecheck: not implemented yet", file=sys.stderr)
    return 2
