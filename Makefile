# The two commands of the README, and a few more. Each bootstraps what it needs (Debian's
# logrotate/patch/wrk, a tools venv with pytest, uv, ruff) through tools/bootstrap.sh.
SHELL := /bin/bash
BOOT = $(shell ./tools/bootstrap.sh)

.PHONY: demo test lint matrix bench bench-quick

demo:  ## reproduce the reported bug with the patch off, then show it fixed
	$(BOOT) -m tools.demo

lint:
	PY=$(BOOT); "$$(dirname $$PY)/ruff" check . && "$$(dirname $$PY)/ruff" format --check .

test: lint  ## every test, as .ci/run runs them
	PY=$(BOOT); PATH="$$(dirname $$PY):$$PATH" $$PY -m pytest --durations=20 tests

BENCHES = storm startup request_path alternatives

bench-quick:  ## every bench script in its --quick mode, one after the other: CI fails if one crashes
	PY=$(BOOT); for b in $(BENCHES); do "$$PY" bench/$$b.py --quick || exit 1; done

bench:  ## the full benches, one at a time, each saved to bench/results/NAME.txt (about 20 min)
	PY=$(BOOT); for b in $(BENCHES); do \
		"$$PY" bench/$$b.py | tee bench/results/$$b.txt; [ "$${PIPESTATUS[0]}" -eq 0 ] || exit 1; done
