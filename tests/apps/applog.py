"""The application log every test app writes, like the report's main.log: one line per request
to a logging.FileHandler at $APP_LOG, so the tests see that USR1 reopens the app's files too."""

import logging
import os

app_log = logging.getLogger("app")
if os.environ.get("APP_LOG"):
    # APP_LOG_MODE=w: a log truncated at start (basicConfig(filemode="w")), tests/test_no_truncation.py
    handler = logging.FileHandler(os.environ["APP_LOG"], mode=os.environ.get("APP_LOG_MODE", "a"))
    handler.setFormatter(logging.Formatter("%(message)s"))
    app_log.addHandler(handler)
    app_log.setLevel(logging.INFO)
    app_log.propagate = False
