"""A stand-in uvicorn for tests/test_startup.py: the hook is the subject, not a server."""
