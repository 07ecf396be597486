# The two commands of the README: `make demo` and `make test`. Both install first (once), from the lock.
PYTHON ?= python3
STAMP := .make/installed-$(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
LOCK := requirements.lock
# `make test-latest` builds this throw-away virtual environment from scratch, unpinned
LATEST_VENV ?= .venv-latest
PYTEST_ARGS ?= -n 2 -q

.PHONY: setup demo test test-fast test-latest test-explore lock lint bench clean

# The lock holds every package at the version the suite passed with; accelsim itself goes on top
# without resolving again (--no-deps), so nothing newer slips in.
$(STAMP): pyproject.toml setup.py $(LOCK)
	$(PYTHON) -m pip install -r $(LOCK)
	$(PYTHON) -m pip install --no-deps -e .
	@mkdir -p .make && touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PYTHON) -m accelsim.cli simulate deit_tiny_patch16_224 --hw zcu102

test: $(STAMP)
	$(PYTHON) -m pytest $(PYTEST_ARGS)

# everything but the tests marked slow (torch.export of whole models, training)
test-fast: $(STAMP)
	$(PYTHON) -m pytest $(PYTEST_ARGS) -m "not slow"

# the newest releases of everything pyproject.toml allows, in a fresh virtual environment
test-latest:
	rm -rf $(LATEST_VENV)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install --upgrade -e ".[dev,ray]"
	$(LATEST_VENV)/bin/python -m pip freeze --exclude-editable | grep -i -E '^(torch|torchvision|timm|numpy|numba|networkx|pydantic|optuna|scipy|scikit-learn|ray|hypothesis|pytest)=='
	$(LATEST_VENV)/bin/python -m pytest $(PYTEST_ARGS) -p no:cacheprovider

# property tests with fresh random examples, 1,000 each (slow; not part of CI)
test-explore: $(STAMP)
	HYPOTHESIS_PROFILE=explore $(PYTHON) -m pytest $(PYTEST_ARGS) $$(grep -rl '@given' tests)

# Re-resolve the lock (uv: `pip install uv`): every platform, Python 3.11+, the newest releases
# allowed by pyproject.toml and lock-constraints.txt. Run `make test` on the result before committing it.
lock:
	uv pip compile pyproject.toml --extra dev --extra ray --universal --python-version 3.11 \
		--constraint lock-constraints.txt --output-file $(LOCK)

lint: $(STAMP)
	$(PYTHON) -m ruff check accelsim tests examples benchmarks setup.py
	$(PYTHON) -m ruff format --check accelsim tests examples benchmarks setup.py
	$(PYTHON) -m mypy accelsim

bench: $(STAMP)
	$(PYTHON) benchmarks/run_all.py

clean:
	rm -rf .make build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache $(LATEST_VENV)
