"""asgi_app's application plus `sleep=SECONDS` in the query: a request that stays in flight.

The matrix needs requests that are certainly inside a worker when USR1 arrives, to show the
0.13.3-0.18.3 releases dropping them. The app logs `begun <query>` to APP_LOG when such a
request has started, so the test can wait for that instead of guessing with a sleep.
"""

import asyncio

from asgi_app import App as _App
from asgi_app import app_log


class App(_App):
    async def __call__(self, receive, send):
        query = self.scope.get("query_string", b"").decode()
        for part in query.split("&"):
            if part.startswith("sleep="):
                app_log.info("begun %s", query)
                await asyncio.sleep(float(part[len("sleep=") :]))
        await _App.__call__(self, receive, send)


app = App
