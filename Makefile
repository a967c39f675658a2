# The two commands of the README. Everything else is a helper they call.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test install services clean

## make run: install, migrate, start web + workers on http://127.0.0.1:8000 (SQLite + SQLite broker in ./var)
run: install
	$(BIN)/inkwell serve

## make test: install, make sure Redis and PostgreSQL answer (start local ones if not), run the suite
test: install services
	$(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || PYTHON=python3; \
	  test -x $(BIN)/python || $$( command -v $(PYTHON) || command -v python3 ) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned, so nothing below pulls a different (multi-GB CUDA) build
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[test,train]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

services:
	scripts/ensure-services.sh
	scripts/ensure-test-tools.sh

clean:
	rm -rf $(VENV) var build *.egg-info
