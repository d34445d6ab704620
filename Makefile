# Two commands for a fresh machine:
#   make serve   install (first time) and run the service with the embedded defaults
#   make test    install (first time) and run the whole test suite
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# the project's packages (pyproject.toml), compiled once at install as a regular install's are: a command
# then does not compile them from source on every start (PYTHONDONTWRITEBYTECODE, a read-only tree);
# Python checks each .pyc against its source's mtime and recompiles an edited module
PACKAGES := core privacy evaluation workers webapp bench synthgate_client

.PHONY: install serve test test-unit test-integration test-browser bench lint check browser-deps clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m compileall -q $(PACKAGES)
	@touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/synthgate serve $(ARGS)

# Test tools from Debian's packages: chromium for the browser tests (never a downloaded
# browser) and docker-compose to validate docker-compose.yml (no Docker engine needed).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium chromium-driver"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	command -v unzip >/dev/null 2>&1 || missing="$$missing unzip"; \
	if [ -n "$$missing" ]; then \
	  echo "installing from Debian:$$missing"; \
	  $(SUDO) apt-get install -y -q $$missing >/dev/null 2>&1 || \
	    { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q $$missing >/dev/null; }; \
	fi

test: $(STAMP) browser-deps
	$(VENV)/bin/pytest $(ARGS)

test-unit: $(STAMP)
	$(VENV)/bin/pytest tests/unit $(ARGS)

test-integration: $(STAMP)
	$(VENV)/bin/pytest tests/integration $(ARGS)

test-browser: $(STAMP) browser-deps
	$(VENV)/bin/pytest tests/browser $(ARGS)

bench: $(STAMP)
	$(VENV)/bin/synthgate bench $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# formatting, lint and types: .ci/run runs this before the tests
check: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) synthgate-data .pytest_cache
