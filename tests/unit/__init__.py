"""In-process tests (marker `unit`, given by tests/conftest.py): `make test-fast` runs these."""
