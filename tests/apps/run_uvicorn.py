"""`uvicorn.run(...)` from a program, as applications embed it: python run_uvicorn.py PORT
LOG_CONFIG_JSON [WORKERS]. The log configuration is passed as a dict (log_config=...)."""

import json
import os
import sys

import uvicorn

if __name__ == "__main__":  # --workers children import this file again as __mp_main__
    with open(sys.argv[2]) as f:
        log_config = json.load(f)
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else None
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    uvicorn.run(
        "asgi_app:app", host="127.0.0.1", port=int(sys.argv[1]), log_config=log_config, workers=workers
    )
