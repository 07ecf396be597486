# The two commands of the README: `make demo` and `make test`. Both install first (once).
PYTHON ?= python3
STAMP := .make/installed-$(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')

.PHONY: setup demo test test-explore lint bench clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m pip install -e ".[dev,ray]"
	@mkdir -p .make && touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PYTHON) -m accelsim.cli simulate deit_tiny_patch16_224 --hw zcu102

test: $(STAMP)
	$(PYTHON) -m pytest -n 2 -q

# property tests with fresh random examples, 1,000 each (slow; not part of CI)
test-explore: $(STAMP)
	HYPOTHESIS_PROFILE=explore $(PYTHON) -m pytest -n 2 -q $$(grep -rl '@given' tests)

lint: $(STAMP)
	$(PYTHON) -m ruff check accelsim tests examples benchmarks setup.py
	$(PYTHON) -m ruff format --check accelsim tests examples benchmarks setup.py
	$(PYTHON) -m mypy accelsim

bench: $(STAMP)
	$(PYTHON) benchmarks/run_all.py

clean:
	rm -rf .make build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
