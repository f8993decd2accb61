"""The stack table lives in tools/stacks.py; this name stays for the tests that import `stacks`."""

from tools.stacks import STACKS, shared_venv, venv  # noqa: F401
