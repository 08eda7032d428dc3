# The README's two commands: `make demo` and `make test`. Each target creates .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEPS := $(VENV)/.deps-installed

.PHONY: demo test bench lint install system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel

# Dependencies (and the test tools) are installed once per change of pyproject.toml.
$(DEPS): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet '.[test]'
	touch $@

# The package itself is re-installed every time (a plain, non-editable install: queue/ maps to sitegate.queue
# without shadowing the standard library's queue, see DESIGN.md).
install: $(DEPS)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation --force-reinstall .

# Debian tools the tests run for real: chronyd and chronyc (clock tests), faketime (a shifted NTP server).
system-deps:
	@if ! command -v chronyd >/dev/null || ! command -v chronyc >/dev/null || ! command -v faketime >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chrony faketime >/dev/null; \
	  else \
	    echo "the tests need Debian's chrony and faketime: sudo apt-get install chrony faketime"; exit 1; \
	  fi; \
	fi

test: install system-deps
	$(BIN)/python -m pytest -q tests

demo: install
	$(BIN)/sitegate demo

bench: install
	$(BIN)/python tests/bench/run.py

lint: $(DEPS)
	$(BIN)/ruff check firmware reader queue paper_fallback tests
	$(BIN)/ruff format --check firmware reader queue paper_fallback tests

clean:
	rm -rf $(VENV) build *.egg-info .bench .pytest_cache
