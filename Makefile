# Everything sets itself up: a fresh clone needs only Python >= 3.11, make and git.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test test-fast lint bench clean docs

$(BIN)/cqrs: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

demo: $(BIN)/cqrs  ## run the demo order service on the embedded engine (moto)
	$(BIN)/python -m examples.shop

# pytest-xdist workers: 3 on 2 cores, since many tests wait on subprocesses, servers or
# Node (measured: 2m52s against 3m00s-3m05s with 2). TEST_WORKERS=0: one process (pdb).
TEST_WORKERS ?= 3

test: $(BIN)/cqrs  ## run the whole test suite (about 2-3 minutes on 2 cores)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

test-fast: $(BIN)/cqrs  ## the quick loop: every test not marked slow (under a minute)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not slow"

lint: $(BIN)/cqrs
	$(BIN)/ruff check cqrs tests examples bench migrations
	$(BIN)/ruff format --check cqrs tests examples bench migrations
	$(BIN)/mypy

bench: $(BIN)/cqrs
	$(BIN)/python -m bench

# The documentation site (mkdocs.yml) into build/site; --strict: any warning fails
# (not --quiet: it hides the warnings from --strict too).
# NO_MKDOCS_2_WARNING silences the material theme's banner about MkDocs 2.0.
docs: $(BIN)/cqrs  ## build the documentation site into build/site
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
