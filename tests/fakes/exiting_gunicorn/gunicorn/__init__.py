"""A gunicorn that calls sys.exit() while being imported (tests/test_doctor.py)."""

import sys

sys.exit(3)
