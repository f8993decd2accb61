import os
import sys

# tests import the shared harness as `tools.*` (tests/stacks.py re-exports tools/stacks.py)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (REPO, os.path.dirname(os.path.abspath(__file__))):
    if path not in sys.path:
        sys.path.insert(0, path)
