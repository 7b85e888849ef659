# Two entry points for a newcomer on a fresh Debian machine:
#   make run   -- set up a virtual environment, install lanspread and start it
#   make test  -- install everything the tests need and run the whole suite
# Every other target is a step of those two.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the app needs: libarchive (archive extraction).
RUN_PACKAGES := libarchive13
# ...and its tests: iproute2 (network-namespace peers in the multi-host tests),
# chromium (the browser tests drive the web UI in it through Playwright).
TEST_PACKAGES := $(RUN_PACKAGES) iproute2 chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test run-deps test-deps apt-install venv lint typecheck unit bench clean

run: run-deps venv
	$(BIN)/lanspread $(ARGS)

test: test-deps venv lint typecheck unit

run-deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(RUN_PACKAGES)"

test-deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(TEST_PACKAGES)"

# Installs the Debian packages in PACKAGES that are missing (apt-get update first).
apt-install:
	@missing=""; for p in $(PACKAGES); do \
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

# Every platform lanspread ships for: the Windows and macOS branches are proven here too.
typecheck: venv
	$(BIN)/mypy --platform linux
	$(BIN)/mypy --platform win32
	$(BIN)/mypy --platform darwin

unit: venv
	$(BIN)/pytest $(PYTEST_ARGS)

bench: venv
	$(BIN)/python bench/scan.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build src/*.egg-info
