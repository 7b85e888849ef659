# Two entry points for a newcomer on a fresh Debian machine:
#   make run   -- set up a virtual environment, install lanspread and start it
#   make test  -- install everything the tests need and run the whole suite
# Every other target is a step of those two.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the app and its tests use: libarchive (archive extraction),
# iproute2 (network-namespace peers in the multi-host tests), chromium (the
# browser tests drive the web UI in it through Playwright).
SYSTEM_PACKAGES := libarchive13 iproute2 chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test system-deps venv lint typecheck unit bench clean

run: venv
	$(BIN)/lanspread $(ARGS)

test: system-deps venv lint typecheck unit

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest $(PYTEST_ARGS)

bench: venv
	$(BIN)/python bench/scan.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build src/*.egg-info
