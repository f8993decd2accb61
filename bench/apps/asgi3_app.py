"""tests/apps/asgi_app.py as a single ASGI3 callable: gunicorn's own `asgi` worker takes only
ASGI3, so every storm setup serves this same callable (uvicorn detects ASGI3 itself)."""

import os
import sys

sys.path.insert(
    0,
    os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tests", "apps"
    ),
)

from asgi_app import App  # noqa: E402


async def app(scope, receive, send):
    await App(scope)(receive, send)
