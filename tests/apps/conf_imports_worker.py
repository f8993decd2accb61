# gunicorn.conf.py that imports uvicorn.workers itself (to subclass or configure it, say):
# the class is then already in sys.modules when gunicorn resolves worker_class.
import uvicorn.workers

worker_class = "uvicorn.workers." + uvicorn.workers.UvicornWorker.__name__
