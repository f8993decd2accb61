# gunicorn.conf.py naming the worker class as a string
worker_class = "uvicorn.workers.UvicornWorker"
