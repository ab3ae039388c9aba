# hilt: `make run` runs the reference suites against the simulated rack; `make test` runs hilt's own tests;
# `make lint` checks style and the layers (docs/architecture.md). All install what they need first
# (scripts/setup.sh: apt packages, a virtualenv, pip, npm).
.PHONY: setup run test lint report bench clean

VENV := .venv
PY := $(VENV)/bin/python

setup:
	@bash scripts/setup.sh

run: setup
	$(VENV)/bin/hilt run

test: setup
	$(PY) -m pytest tests -q -p no:cacheprovider --durations=15

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
