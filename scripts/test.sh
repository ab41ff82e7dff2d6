#!/usr/bin/env bash
# `make test`: lint and type-check, then every test tier against a real broker and database.
# Uses KAFKA_BOOTSTRAP_SERVERS / MONGO_URI / LDAP_URI / TEST_PG_URL when set; otherwise starts
# its own on the test ports (19092, 27018, 13389, 15433) with fresh data, so it can run while
# `make run` is up, and stops them. With LDAP_URI set, LDAP_BIND_DN and LDAP_ADMIN_PASSWORD say
# how to bind; TEST_PG_URL names a database the tests may create tables in, with its password
# in PGPASSWORD.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO="$PWD"

export INFRA_DIR="$REPO/.infra/test"
export KAFKA_PORT="${TEST_KAFKA_PORT:-19092}"
export KAFKA_CONTROLLER_PORT="${TEST_KAFKA_CONTROLLER_PORT:-19093}"
export MONGO_PORT="${TEST_MONGO_PORT:-27018}"
export LDAP_PORT="${TEST_LDAP_PORT:-13389}"
export LDAP_ADMIN_PASSWORD="${LDAP_ADMIN_PASSWORD:-admin-password}"
export PG_PORT="${TEST_PG_PORT:-15433}"
export PG_PASSWORD="${PG_PASSWORD:-pg-password}"

started=()
cleanup() {
  local code=$?
  for component in "${started[@]}"; do scripts/infra.sh down "$component" || true; done
  # The test cluster is throw-away (the next run starts from nothing); when it lives outside
  # the clone (/var/tmp, for a folder the postgres user cannot enter) it goes with the run.
  if [[ " ${started[*]} " == *" postgres "* ]]; then scripts/infra.sh forget postgres || true; fi
  exit "$code"
}
trap cleanup EXIT INT TERM

echo "== lint and types"
make --no-print-directory lint

# A fresh test broker and database every run: no state leaks from the last run into this one.
if [[ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" || -z "${MONGO_URI:-}" || -z "${LDAP_URI:-}" ||
  -z "${TEST_PG_URL:-}" ]]; then
  scripts/infra.sh down >/dev/null 2>&1 || true
  rm -rf "$INFRA_DIR"
fi
if [[ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
  echo "== starting the test Kafka broker on 127.0.0.1:$KAFKA_PORT"
  started+=(kafka)
  scripts/infra.sh up kafka
  export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT"
fi
if [[ -z "${MONGO_URI:-}" ]]; then
  echo "== starting the test MongoDB server on 127.0.0.1:$MONGO_PORT"
  started+=(mongo)
  scripts/infra.sh up mongo
  export MONGO_URI="mongodb://127.0.0.1:$MONGO_PORT"
fi

if [[ -z "${LDAP_URI:-}" ]]; then
  echo "== starting the test OpenLDAP server on 127.0.0.1:$LDAP_PORT"
  started+=(ldap)
  scripts/infra.sh up ldap
  export LDAP_URI="ldap://127.0.0.1:$LDAP_PORT"
  # The tests stop and start this slapd (a server lost mid-apply); they find it here.
  export TEST_LDAP_INFRA_DIR="$INFRA_DIR"
fi

if [[ -z "${TEST_PG_URL:-}" ]]; then
  echo "== starting the test PostgreSQL server on 127.0.0.1:$PG_PORT"
  started+=(postgres)
  scripts/infra.sh up postgres
  export TEST_PG_URL="postgresql://provisioning@127.0.0.1:$PG_PORT/provisioning"
  export PGPASSWORD="$PG_PASSWORD"
fi

echo "== tests (unit, integration, e2e) against $KAFKA_BOOTSTRAP_SERVERS, $MONGO_URI, $LDAP_URI and $TEST_PG_URL"
mkdir -p test-results
.venv/bin/pytest -p no:cacheprovider -q -ra --junitxml=test-results/junit.xml "$@"
