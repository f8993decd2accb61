"""The application every real-process test serves.

ASGI2-style (a class taking the scope), which every uvicorn from 0.4 to today accepts. Each
request also writes one line through an application logging.FileHandler (like the report's
main.log) when APP_LOG names a file, so the tests can see that it is reopened too.
"""

import os

from applog import app_log


class App(object):
    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        if self.scope["type"] != "http":
            return
        query = self.scope.get("query_string", b"").decode()
        app_log.info("served %s?%s pid=%d", self.scope["path"], query, os.getpid())
        body = "pid={}\n".format(os.getpid()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


app = App


async def asgi3(scope, receive, send):
    """The same application as one ASGI3 callable: gunicorn's own `asgi` worker takes only ASGI3."""
    await App(scope)(receive, send)
