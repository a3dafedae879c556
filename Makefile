# Set-up, local runs, tests and lint. `make help` lists the targets.
#
# Every target that needs Python first runs `install`, which creates .venv and
# installs libs/, each service and the gateway (those with a pyproject.toml)
# in editable mode, plus the dev tools, all pinned by constraints.txt. It does
# nothing when none of those files changed since the last install.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

# Installable projects in this checkout: libs, then services/*, then gateway.
PROJECTS := libs $(patsubst %/pyproject.toml,%,$(sort $(wildcard services/*/pyproject.toml)))
PROJECTS += $(patsubst %/pyproject.toml,%,$(wildcard gateway/pyproject.toml))
INSTALL_STAMP := $(VENV)/.edulink-installed
PROJECT_LIST := $(VENV)/.edulink-projects

PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=

.PHONY: help install up demo test lint dev-token dev-env constraints FORCE

help:
	@echo "make up          install, migrate and run every app on 127.0.0.1 (Ctrl-C stops)"
	@echo "make test        install, then run the whole test suite against PostgreSQL"
	@echo "make demo        walk one placement through the gateway of a running make up"
	@echo "make lint        ruff format --check, ruff check and the import contracts"
	@echo "make bench       run every benchmark (long) and rewrite the end of BENCHMARKS.md"
	@echo "make dev-token ROLE=student [SUBJECT=uuid] [ORG='uuid uuid'] [EMAIL=a@b.c]"
	@echo "                 print a token signed with the local development key"
	@echo "make dev-env     write var/dev/local.env (secrets, JWKS path, URLs)"
	@echo "make install     create .venv and install everything (done by the above)"
	@echo "make constraints regenerate constraints.txt (UPGRADE=1 for new releases)"

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "error: Python 3.11 or newer is required; run with PYTHON=python3.X" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Rewritten only when the set of projects changes, so a new service triggers
# a new install even when its pyproject.toml is older than the stamp.
$(PROJECT_LIST): FORCE | $(PY)
	@echo '$(PROJECTS)' | cmp -s - $@ || echo '$(PROJECTS)' > $@

$(INSTALL_STAMP): $(PROJECT_LIST) constraints.txt requirements-dev.txt $(addsuffix /pyproject.toml,$(PROJECTS))
	$(PY) -m pip install --quiet --constraint constraints.txt --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet --constraint constraints.txt \
		--requirement requirements-dev.txt $(addprefix --editable ,$(PROJECTS))
	@touch $@

install: $(INSTALL_STAMP)

up: install
	@exec $(PY) scripts/run_local.py

# Needs `make up` running; EDULINK_URL and the other settings in scripts/demo.py.
demo: install
	@$(PY) scripts/demo.py

# pytest exits with 5 when it collected no tests; that is a failure here too.
test: install
	@$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS); status=$$?; \
		if [ $$status -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi; \
		exit $$status

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(PY) scripts/lint_imports.py

# Installs wrk with apt-get (through sudo unless root) when it is missing.
# BENCH_ARGS go to bench/run_all.py, e.g. BENCH_ARGS='--only gateway --quick'.
.PHONY: bench
bench: install
	@command -v wrk >/dev/null || { \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); echo "installing wrk"; \
		$$sudo apt-get install --yes wrk || \
		{ $$sudo apt-get update && $$sudo apt-get install --yes wrk; }; }
	$(PY) -m bench.run_all $(BENCH_ARGS)

dev-token: install
	@$(PY) scripts/dev_token.py --role '$(ROLE)' \
		$(if $(SUBJECT),--subject '$(SUBJECT)') \
		$(foreach org,$(ORG),--org '$(org)') \
		$(if $(EMAIL),--email '$(EMAIL)')

dev-env: install
	@$(PY) scripts/local_env.py

constraints:
	PYTHON=$(PYTHON) scripts/freeze_constraints.sh $(PROJECTS)

FORCE:
