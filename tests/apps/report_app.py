"""The reported service, reduced: FastAPI with GET /api/client and an app log (main.log)."""

import logging
import os

from fastapi import FastAPI

app = FastAPI()
log = logging.getLogger("main")
if os.environ.get("APP_LOG"):
    handler = logging.FileHandler(os.environ["APP_LOG"])
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


@app.get("/api/client")
async def clients(page_size: int = 10, page: int = 1, tag: str = ""):
    log.info("listing clients page=%d page_size=%d tag=%s", page, page_size, tag)
    return {"page": page, "page_size": page_size, "items": []}
