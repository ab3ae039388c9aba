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

# every test: the fast ones in parallel, then the rack ones one after another (racks share names and subnets);
# both phases always run, and the target fails if either did
test: setup
	@fast=0; $(PY) -m pytest tests -m "not rack" -n 4 --dist loadgroup -q -p no:cacheprovider --durations=10 || fast=$$?; \
	rack=0; $(PY) -m pytest tests -m rack -q -p no:cacheprovider --durations=15 || rack=$$?; \
	echo "make test: fast tests exit $$fast, rack tests exit $$rack"; [ $$fast -eq 0 ] && [ $$rack -eq 0 ]

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
