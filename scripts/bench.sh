#!/usr/bin/env bash
# `make bench`: benchmarks against the broker and database in KAFKA_BOOTSTRAP_SERVERS /
# MONGO_URI, or against a local MongoDB server of its own on port 27019 that it stops after.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export INFRA_DIR="$PWD/.infra/bench" MONGO_PORT="${BENCH_MONGO_PORT:-27019}"
if [[ -z "${MONGO_URI:-}" ]]; then
  scripts/infra.sh up mongo
  trap 'scripts/infra.sh down mongo' EXIT
  export MONGO_URI="mongodb://127.0.0.1:$MONGO_PORT"
fi
.venv/bin/python -m bench
