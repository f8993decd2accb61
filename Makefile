# The two commands of the README (demo, test), and a few more. Each bootstraps what it needs
# (Debian's logrotate/patch/wrk, a tools venv with pytest, uv, ruff) through tools/bootstrap.sh.
# `make help` lists them. Which test is which: docs/development.md.
SHELL := /bin/bash
BOOT = $(shell ./tools/bootstrap.sh)

.PHONY: help demo test test-fast docs-check lint matrix bench bench-quick

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

demo:  ## reproduce the reported bug with the patch off, then show it fixed
	$(BOOT) -m tools.demo

lint:  ## ruff check and ruff format --check
	PY=$(BOOT); "$$(dirname $$PY)/ruff" check . && "$$(dirname $$PY)/ruff" format --check .

test: lint  ## every test, unit and e2e, each once, as .ci/run runs them
	PY=$(BOOT); PATH="$$(dirname $$PY):$$PATH" $$PY -m pytest --durations=20 tests

test-fast:  ## the unit tests only (marker `unit`: no server, no venv built): the contributor's loop
	PY=$(BOOT); PATH="$$(dirname $$PY):$$PATH" $$PY -m pytest -q -m unit --min-tests 100 tests

docs-check:  ## run or validate every fenced code sample of the docs (tools/docs_check.py FILES)
	PY=$(BOOT); PATH="$$(dirname $$PY):$$PATH" $$PY -m tools.docs_check

matrix:  ## rerun the compatibility matrix on real stacks and rewrite COMPATIBILITY.md (its header has the last wall time)
	PY=$(BOOT); PATH="$$(dirname $$PY):$$PATH" $$PY -m tools.matrix --write COMPATIBILITY.md

BENCHES = storm startup request_path alternatives

bench-quick:  ## every bench script in its --quick mode, one after the other: CI fails if one crashes
	PY=$(BOOT); for b in $(BENCHES); do "$$PY" bench/$$b.py --quick || exit 1; done

bench:  ## the full benches, one at a time, each saved to bench/results/NAME.txt (the last run: 455+302+260+81 s, their `total` lines)
	PY=$(BOOT); for b in $(BENCHES); do \
		"$$PY" bench/$$b.py | tee bench/results/$$b.txt; [ "$${PIPESTATUS[0]}" -eq 0 ] || exit 1; done
