# The commands the README gives. `make run` and `make test` work on a fresh clone:
# they create the environment first (uv from PyPI into .tools/, then .venv/ from uv.lock).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV_STAMP := .venv/.synced
CHROMIUM ?= /usr/bin/chromium
SLAPD ?= /usr/sbin/slapd

.PHONY: help venv browser ldap-server postgres-server run test test-unit test-faults test-scale lint format infra-up infra-down infra-status infra-logs bench screenshots clean

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# python-ldap builds from source against Debian's libldap2-dev/libsasl2-dev: installed first.
$(VENV_STAMP): $(UV) uv.lock pyproject.toml libs/common/pyproject.toml services/*/pyproject.toml | ldap-server
	$(UV) sync --all-packages --frozen --quiet
	@touch $@

venv: $(VENV_STAMP) ## create or update .venv from uv.lock

browser: ## install Debian's chromium for the browser tests (no browser download)
	@command -v $(CHROMIUM) >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the console tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

ldap-server: ## install Debian's OpenLDAP (slapd, ldap-utils, and the headers python-ldap builds with)
	@scripts/install-ldap.sh

# PostgreSQL: the SQL connectors' server, a cluster of the project's own (scripts/infra.sh).
postgres-server: ## install Debian's PostgreSQL (postgresql, postgresql-client); no cluster left running
	@scripts/install-postgres.sh

run: venv ldap-server postgres-server ## start Kafka, MongoDB, slapd, PostgreSQL, a SCIM app and every service, load the demo; Ctrl-C stops all
	.venv/bin/python scripts/run.py

test: venv browser ldap-server postgres-server ## lint, type-check and run every test tier on their own broker and database
	scripts/test.sh

test-unit: venv ## the unit tests alone: no broker, no database, a few seconds
	@# Without the schemathesis and hypothesis plugins: seconds of imports no unit test needs.
	PROVISIONING_TESTS_WITHOUT_INFRA=1 .venv/bin/pytest -p no:cacheprovider -p no:schemathesis \
	  -p no:hypothesispytest -q tests/unit

test-faults: venv ## the fault suite alone, then docs/reliability.md from its figures (ARGS= one test)
	@[[ -n "$(ARGS)" ]] || rm -f test-results/reliability.json
	scripts/test.sh $(or $(ARGS),tests/faults); status=$$?; \
	  .venv/bin/python scripts/reliability_report.py; exit $$status

test-scale: venv ## the scale test alone (3 runners, 3 guards, 2 projectors, 2 APIs): docs/scale.md
	@# 200 jobs (SCALE_JOBS to change it); the figures land in test-results/scale/.
	scripts/test.sh -s tests/scale

lint: venv ## ruff check, ruff format --check, mypy --strict
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy libs/common/src services/job-api/src services/sequence-runner/src services/threshold-guard/src tests bench scripts infra

format: venv ## apply ruff's fixes and formatting
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

infra-up: venv ## start the local Kafka broker, MongoDB server, slapd and PostgreSQL (ports 9092, 27017, 3389, 5433)
	scripts/infra.sh up

infra-down: ## stop them
	scripts/infra.sh down

infra-status: ## are they running?
	scripts/infra.sh status

infra-logs: ## their last log lines
	scripts/infra.sh logs

bench: venv ## benchmarks: our code against raw clients on the same broker and server
	scripts/bench.sh

screenshots: ## copy the console screenshots of the last test run into docs/screenshots
	cp test-results/screenshots/*.png docs/screenshots/

clean: infra-down ## remove the environment, jars and data folders
	@# PostgreSQL clusters kept under /var/tmp for a clone the postgres user cannot enter.
	@for dir in .infra/*/; do \
	  [ -d "$$dir" ] && INFRA_DIR="$$PWD/$${dir%/}" scripts/infra.sh forget postgres || true; \
	done
	rm -rf .venv .tools .infra test-results
