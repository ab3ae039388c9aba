# hilt: `make run` runs the reference suites against the simulated rack; `make test` runs hilt's own tests;
# `make test-fast` runs those that boot no rack (no `rack` marker: no rack lock), in parallel; `make lint` checks
# style and the layers (docs/architecture.md). All install what they need first (scripts/setup.sh: apt packages,
# a virtualenv, pip, npm).
.PHONY: setup run test test-fast lint report bench clean

VENV := .venv
PY := $(VENV)/bin/python

setup:
	@bash scripts/setup.sh

run: setup
	$(VENV)/bin/hilt run

test: setup
	$(PY) -m pytest tests -q -p no:cacheprovider --durations=15

test-fast: setup  # the edit-test loop: every test but the rack ones, 4 workers (most of a test's time is waiting)
	$(PY) -m pytest tests -m "not rack" -n 4 --dist loadgroup -q -p no:cacheprovider --durations=10

lint: setup  # ruff, and the layers of docs/architecture.md (import-linter's contracts in pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

report: setup
	$(VENV)/bin/hilt report --allure

bench: setup  # every benchmark but the GPU check (bench/gpu_check.sh, for machines with a GPU)
	for script in bench/*.py; do [ "$$script" = bench/gpu_check.py ] && continue; \
	  echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf reports .pytest_cache
