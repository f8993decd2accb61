# The two commands of the README, and a few more. Each bootstraps what it needs (Debian's
# logrotate/patch/wrk, a tools venv with pytest, uv, ruff) through tools/bootstrap.sh.
SHELL := /bin/bash
BOOT = $(shell ./tools/bootstrap.sh)

.PHONY: demo test lint matrix bench

demo:  ## reproduce the reported bug with the patch off, then show it fixed
	$(BOOT) -m tools.demo

lint:
	PY=$(BOOT); "$$(dirname $$PY)/ruff" check . && "$$(dirname $$PY)/ruff" format --check .

test: lint  ## every test, as .ci/run runs them
	PY=$(BOOT); PATH="$$(dirname $$PY):$$PATH" $$PY -m pytest --durations=20 tests
