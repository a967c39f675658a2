# The two commands of the README. Everything else is a helper they call.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
HASH := $(shell sha1sum pyproject.toml | cut -c1-12)
RUN_STAMP := $(VENV)/.run-$(HASH)
TEST_STAMP := $(VENV)/.test-$(HASH)

.PHONY: run test lint services clean

## make run: install, migrate, start web + workers on http://127.0.0.1:8000 (SQLite + SQLite broker in ./var)
run: $(RUN_STAMP)
	$(BIN)/inkwell serve

## make test: install, lint (ruff, mypy on the core), make sure Redis, PostgreSQL and the browser are there, run the whole suite
test: lint services
	$(BIN)/python -m pytest -p no:cacheprovider --durations=25 $(PYTEST_ARGS)

## make lint: ruff (lint and format, whole tree) and mypy (the core, inkwell/); the versions are pinned in pyproject.toml
lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned, so that nothing below pulls in a different (multi-GB CUDA) build
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e .
	rm -f $(VENV)/.run-* && touch $@

$(TEST_STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,train]"
	rm -f $(VENV)/.test-* && touch $@

services:
	scripts/ensure-services.sh
	scripts/ensure-test-tools.sh

clean:
	rm -rf $(VENV) var build *.egg-info test-artifacts
