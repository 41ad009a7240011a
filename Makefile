# Everything sets itself up: a fresh clone needs only Python >= 3.11, make and git.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/cqrs: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

demo: $(BIN)/cqrs  ## run the demo order service on the embedded engine (moto)
	$(BIN)/python -m examples.shop

test: $(BIN)/cqrs  ## run the whole test suite
	$(BIN)/python -m pytest -q

lint: $(BIN)/cqrs
	$(BIN)/ruff check cqrs tests examples bench migrations
	$(BIN)/ruff format --check cqrs tests examples bench migrations
	$(BIN)/mypy

bench: $(BIN)/cqrs
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
