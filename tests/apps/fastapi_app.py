"""The report's service, reduced: FastAPI with `GET /api/client?page_size=10&page=1`.

Like the report's main.log, each request writes one line to an application
logging.FileHandler at $APP_LOG; `sleep=SECONDS` keeps a request in flight (see matrix_app).
"""

import asyncio
import os

from applog import app_log
from fastapi import FastAPI

app = FastAPI()


@app.get("/api/client")
async def client(page_size: int = 10, page: int = 1, tag: str = "", sleep: float = 0.0):
    query = "page_size={}&page={}&tag={}".format(page_size, page, tag)
    if sleep:
        app_log.info("begun %s&sleep=%s", query, sleep)
        await asyncio.sleep(sleep)
    app_log.info("served /api/client?%s pid=%d", query, os.getpid())
    return {"page": page, "page_size": page_size, "items": [], "pid": os.getpid()}


@app.get("/boot")
async def boot():
    return {"pid": os.getpid()}
