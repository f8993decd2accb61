"""asgi_app's application for gunicorn's own WSGI workers (sync, gthread): one app-log line a request."""

import os

from applog import app_log


def app(environ, start_response):
    app_log.info("served %s?%s pid=%d", environ["PATH_INFO"], environ.get("QUERY_STRING", ""), os.getpid())
    body = "pid={}\n".format(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
