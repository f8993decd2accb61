"""A gunicorn whose import fails, put first on PYTHONPATH by tests/test_doctor.py."""

raise RuntimeError("gunicorn is broken on purpose")
