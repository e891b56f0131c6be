# tokenwise developer / CI entry points.  `make test` is what CI runs (via .ci/run).
# Every target works on a fresh clone: the venv is created on demand.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON     ?= python3
VENV       := .venv
BIN        := $(VENV)/bin
# Re-install only when pyproject.toml changes (or the venv was wiped).
STAMP      := $(VENV)/.install-stamp
# Empty dirs are not in git, so only lint the ones that exist (ruff errors on missing paths).
LINT_PATHS := $(wildcard src tests bench)
PYTEST_ARGS ?=
ARGS       ?=

.PHONY: help venv install system-deps migrate run cluster cluster-stop lint typecheck pytest test bench screenshots clean distclean

help:
	@echo "make install      create $(VENV) and pip install -e '.[dev]'"
	@echo "make system-deps  apt-install redis-server, postgresql, nginx, chromium (if missing)"
	@echo "make migrate      apply database migrations"
	@echo "make run          migrate, then serve with a demo user (ARGS='--port 9000', PORT=...)"
	@echo "make cluster      PostgreSQL, Redis, nginx, auth, 2 API, 2 workers (ARGS='--api 3', PORT=...)"
	@echo "make cluster-stop stop a cluster started by make cluster in another shell"
	@echo "make lint         ruff check + ruff format --check"
	@echo "make typecheck    mypy (strict, config in pyproject.toml)"
	@echo "make test         install + system-deps, then lint, typecheck, pytest (PYTEST_ARGS=...)"
	@echo "make bench        run bench/golden_path.py"
	@echo "make screenshots  run the browser tests and refresh docs/screenshots/"
	@echo "make clean        remove caches and build artefacts (distclean: also $(VENV))"

# ---- environment ---------------------------------------------------------------------------

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

venv install: $(STAMP)

system-deps:
	bash scripts/install-system-deps.sh

# ---- app -----------------------------------------------------------------------------------

migrate: install
	$(BIN)/tokenwise migrate

# exec: the server replaces the make shell, so Ctrl-C / SIGTERM reach it directly.
run: install migrate
	exec $(BIN)/tokenwise serve --demo-user $(ARGS)

# A local cluster in the foreground (docs/operations.md#cluster): nginx round-robin on PORT (8000) over
# the API processes; data and logs in ./var/cluster. Ctrl-C stops everything it started.
cluster: install
	exec $(BIN)/tokenwise cluster $(ARGS)

cluster-stop: install
	$(BIN)/tokenwise cluster --stop $(ARGS)

bench: install
	$(BIN)/python bench/golden_path.py

# The browser tests save screenshots to artifacts/; this also copies them to docs/screenshots/.
screenshots: install
	UPDATE_SCREENSHOTS=1 $(BIN)/pytest -q -p no:cacheprovider tests/e2e/browser

# ---- checks --------------------------------------------------------------------------------

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: install
	$(BIN)/mypy

# pytest alone (no lint/typecheck); -p no:cacheprovider keeps the tree clean.
pytest: install
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# THE CI command. Prerequisites first (tests start real Postgres/Redis from system packages),
# then the checks in order, cheapest first, stopping at the first failure.
test: install system-deps
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory typecheck
	$(MAKE) --no-print-directory pytest

# ---- housekeeping --------------------------------------------------------------------------

clean:
	rm -rf build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis src/*.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
