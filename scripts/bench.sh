#!/usr/bin/env bash
# `make bench`: benchmarks against the broker, database and directory in KAFKA_BOOTSTRAP_SERVERS /
# MONGO_URI / LDAP_URI / BENCH_PG_URL (password in PGPASSWORD), or against a local Kafka (port
# 29092), MongoDB server (port 27019), slapd (port 13390, fresh data) and PostgreSQL (port 15434,
# fresh data) of its own that it stops after, and for the listing a second SecantusDB (port 27020,
# its data kept in .infra/bench-listing for the next run). BENCH_ONLY=planner needs none. The
# listing, latency and plan_apply benchmarks start the services as processes, the API on
# BENCH_API_PORT (27482).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export INFRA_DIR="$PWD/.infra/bench" MONGO_PORT="${BENCH_MONGO_PORT:-27019}"
export LDAP_PORT="${BENCH_LDAP_PORT:-13390}"
export PG_PORT="${BENCH_PG_PORT:-15434}" PG_PASSWORD="${PG_PASSWORD:-pg-password}"
export KAFKA_PORT="${BENCH_KAFKA_PORT:-29092}" KAFKA_CONTROLLER_PORT="${BENCH_KAFKA_CONTROLLER_PORT:-29093}"
if [[ "${BENCH_ONLY:-}" == planner ]]; then
  exec .venv/bin/python -m bench
fi
# The planner first, before any server starts: it times CPU seconds in fresh interpreters, and
# on two cores the broker's JVM warming up and the servers opening their data (seconds of CPU
# each) made its 10k and 100k figures a third slower in a run of 2026-12-06.
if [[ -z "${BENCH_ONLY:-}" || ",$BENCH_ONLY," == *,planner,* ]]; then
  mkdir -p "$INFRA_DIR"
  export BENCH_PLANNER_FIGURES="$INFRA_DIR/planner-figures.json"
  rm -f "$BENCH_PLANNER_FIGURES"
  .venv/bin/python -m bench.bench_planner --figures "$BENCH_PLANNER_FIGURES"
fi
started=()
LISTING_INFRA_DIR="$PWD/.infra/bench-listing"
listing_server=
stop() {
  for c in "${started[@]}"; do scripts/infra.sh down "$c" || true; done
  # Its PostgreSQL is fresh every run; outside the clone (/var/tmp) it goes with the run.
  if [[ " ${started[*]} " == *" postgres "* ]]; then scripts/infra.sh forget postgres || true; fi
  if [[ -n "$listing_server" ]]; then
    INFRA_DIR="$LISTING_INFRA_DIR" MONGO_PORT="$listing_server" scripts/infra.sh down mongo || true
  fi
}
trap stop EXIT
if [[ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
  started+=(kafka)
  scripts/infra.sh up kafka
  export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT"
fi
if [[ -z "${MONGO_URI:-}" ]]; then
  started+=(mongo)
  scripts/infra.sh up mongo
  export MONGO_URI="mongodb://127.0.0.1:$MONGO_PORT"
  # The listing's read models (up to 1,000,000 job instances, kept between runs) live in a
  # SecantusDB of their own (.infra/bench-listing, port 27020): in the server the other
  # benchmarks write to, their weight slowed those writes, and sorting a million documents in
  # memory leaves the server process that much larger. Its peak memory is reported.
  if [[ -z "${BENCH_ONLY:-}" || ",$BENCH_ONLY," == *,listing,* ]]; then
    listing_server="${BENCH_LISTING_MONGO_PORT:-27020}"
    INFRA_DIR="$LISTING_INFRA_DIR" MONGO_PORT="$listing_server" scripts/infra.sh up mongo
    export BENCH_LISTING_MONGO_URI="mongodb://127.0.0.1:$listing_server"
    export BENCH_LISTING_MONGO_PIDFILE="$LISTING_INFRA_DIR/mongo.pid"
  fi
fi
if [[ -z "${LDAP_URI:-}" ]]; then
  scripts/infra.sh down ldap >/dev/null 2>&1 || true
  rm -rf "$INFRA_DIR/ldap"
  started+=(ldap)
  scripts/infra.sh up ldap
  export LDAP_URI="ldap://127.0.0.1:$LDAP_PORT"
fi
if [[ -z "${BENCH_PG_URL:-}" ]]; then
  scripts/infra.sh down postgres >/dev/null 2>&1 || true
  rm -rf "$INFRA_DIR/postgres"
  started+=(postgres)
  scripts/infra.sh up postgres
  export BENCH_PG_URL="postgresql://provisioning@127.0.0.1:$PG_PORT/provisioning"
  export PGPASSWORD="$PG_PASSWORD"
fi
.venv/bin/python -m bench
