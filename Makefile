# Two commands for a fresh machine: `make demo` and `make test`. Everything else is a shortcut.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STATION := $(VENV)/bin/station
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

AGENT_HOST_BUILD := build/agent/host

.PHONY: help bootstrap system-deps demo demo-gui test lint typecheck layers pytest gui bench clean package agent

help:
	@echo "make demo   set up everything, then run the lab demo end to end"
	@echo "make test   set up everything, then lint, type-check, check layers and run the tests"
	@echo "make demo-gui  the same demo, its operator steps clicked through the station window"
	@echo "make gui    start the lab and the station GUI"
	@echo "make bench  run the benchmarks (figures go to docs/performance.md by hand)"
	@echo "make lint   ruff + mypy + import-linter only"
	@echo "make package  one-folder app in dist/station (PyInstaller) + its smoke test"
	@echo "make agent  build the C board agent (agent/) and run its unit tests"

system-deps:
	@bash packaging/install-system-deps.sh

$(STAMP): pyproject.toml lab/pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]' -e ./lab
	@touch $(STAMP)

# Issue 16: Microsoft's Node device SDK for the lab's TPM boards (package-lock.json pins it;
# .npmrc skips install scripts: tss.js needs no native module for its TPM-simulator socket).
NODE_DIR := lab/station_lab/node
NODE_STAMP := $(NODE_DIR)/node_modules/.installed-stamp

$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	@cd $(NODE_DIR) && npm ci --silent
	@touch $(NODE_STAMP)

bootstrap: system-deps $(STAMP) $(NODE_STAMP)

demo: bootstrap
	$(STATION) demo

demo-gui: bootstrap
	$(STATION) demo --gui

lint: bootstrap
	$(VENV)/bin/ruff check station hsm lab tests benchmarks
	$(VENV)/bin/ruff format --check station hsm lab tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

typecheck: bootstrap
	$(VENV)/bin/mypy

layers: bootstrap
	$(VENV)/bin/lint-imports

pytest: bootstrap agent
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

# The C board agent (docs/agent-porting.md): the host port the lab runs with --firmware c, and
# the core's unit tests (ctest).
agent: system-deps
	cmake -S agent -B $(AGENT_HOST_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(AGENT_HOST_BUILD) -j2
	ctest --test-dir $(AGENT_HOST_BUILD) --output-on-failure

test: lint pytest

# The lab first (SoftHSM2 CA, local DPS, four virtual boards bound to slots), then the window;
# closing the window stops the lab. See packaging/gui_lab.py for the lab logins.
gui: bootstrap
	$(PY) packaging/gui_lab.py

# One-folder app in dist/station/ (PyInstaller), then its smoke test (packaging/smoke-test.sh).
package: bootstrap
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,package]'
	$(VENV)/bin/pyinstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller \
		packaging/pyinstaller/station.spec
	bash packaging/smoke-test.sh dist/station/station

bench: bootstrap
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .demo \
		$(NODE_DIR)/node_modules
