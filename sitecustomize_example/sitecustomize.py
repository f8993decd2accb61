"""Turn on uvicorn-usr1-patch where its .pth file is not processed.

`site` imports a module named sitecustomize from sys.path at start-up, after it has (or has
not) processed the .pth files. Put this file in a directory on the interpreter's path (or
merge its lines into your own sitecustomize.py). It costs what the .pth costs: our two small
modules; uvicorn and the rest of the package are imported only when gunicorn imports
uvicorn's worker module.
"""

try:
    import uvicorn_usr1_patch
except ImportError:  # the package is not installed here: run as if this file were absent
    pass
else:
    uvicorn_usr1_patch.install()  # idempotent; honours UVICORN_USR1_PATCH=0
