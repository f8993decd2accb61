"""A wrapt whose import fails: the patch must warn once and leave uvicorn as it was."""

raise RuntimeError("wrapt is broken on purpose")
