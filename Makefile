# Two commands set everything up on a fresh machine with Python 3.11+: `make run`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: run test lint format bench clean chromium screenshots

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "promptlogic needs Python 3.11 or newer (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install $(PIP_FLAGS) -e .
	@touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install $(PIP_FLAGS) -e '.[dev]'
	@touch $@ $(VENV)/.installed

run: $(VENV)/.installed  ## start the service and one worker on the embedded default
	$(BIN)/promptlogic serve --with-worker

# The UI's browser tests drive Debian's Chromium (a browser Playwright downloads cannot be
# fetched here); installed once, with sudo when not root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null || { echo "installing Debian's chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

test: $(VENV)/.installed-dev chromium  ## lint, then the whole test suite
	$(BIN)/ruff check src tests migrations bench scripts
	$(BIN)/ruff format --check src tests migrations bench scripts
	$(BIN)/pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests migrations bench scripts

format: $(VENV)/.installed-dev
	$(BIN)/ruff format src tests migrations bench scripts
	$(BIN)/ruff check --fix src tests migrations bench scripts

bench: $(VENV)/.installed-dev  ## benchmarks; they print figures and are not part of `make test`
	for bench in auth_overhead render_isolation render_throughput propagation run_records run_overhead; do \
		echo "== $$bench"; $(BIN)/python bench/$$bench.py || exit 1; done

screenshots: $(VENV)/.installed-dev chromium  ## PNGs of the UI's main pages into docs/screenshots/
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
