# Two user-facing targets: `make demo` and `make test`. Both set up .venv on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch==2.13.0 is the CPU build on this machine's disk; an existing torch is kept.
.torch-stamp: $(BIN)/python
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	@touch $@

demo: .torch-stamp
	$(BIN)/python -m pip install -q -e .
	$(BIN)/wpl demo

test: .torch-stamp
	$(BIN)/python -m pip install -q -e ".[test]"
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/python -m pytest
