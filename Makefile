# make train: the main job.  make test: the test suite.  Both create/reuse .venv and install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install train test test-fast lint format bench clean

# torch is pinned first: the CPU wheel 2.13.0 installs locally in seconds, and the package's torch range
# admits it, so pip does not fetch a newer CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(BIN)/sentiment train --config configs/default.yaml $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

# everything but the tests marked slow (real processes and signals, the real data in ../shared)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

format: $(STAMP)
	$(BIN)/ruff check --fix src tests scripts
	$(BIN)/ruff format src tests scripts

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
