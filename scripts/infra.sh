#!/usr/bin/env bash
# shellcheck disable=SC2317  # shellcheck misreads the "${c}_up" dispatch and the final exit as dead code
# Local infrastructure for tests and `make run`: a real single-node Apache Kafka
# broker (KRaft, combined broker+controller, official jars from Maven Central),
# a MongoDB wire-protocol server (SecantusDB), an OpenLDAP directory (Debian's
# slapd, with its own cn=config) and a throw-away PostgreSQL cluster (Debian's
# postgresql, initdb into the infra folder), each as a background process.
#
#   scripts/infra.sh up|down|status|logs [kafka|mongo|ldap|postgres]
#
# Environment (defaults in brackets):
#   INFRA_DIR              [<repo>/.infra/run]  data, logs and pid files
#   KAFKA_PORT             [9092]   client listener, advertised as PLAINTEXT://127.0.0.1:$KAFKA_PORT
#   KAFKA_CONTROLLER_PORT  [9093]   KRaft controller listener
#   MONGO_PORT             [27017]
#   LDAP_PORT              [3389]   slapd on ldap://127.0.0.1:$LDAP_PORT, suffix dc=example,dc=org
#   LDAP_ADMIN_PASSWORD    [admin-password]  of cn=admin,dc=example,dc=org (set when the data is made)
#   LDAP_READER_PASSWORD   [reader-password] of cn=limited-reader,dc=example,dc=org (size limit 3)
#   SLAPD                  [/usr/sbin/slapd]  `make ldap-server` installs Debian's
#   PG_PORT                [5433]   PostgreSQL on 127.0.0.1:$PG_PORT, database provisioning
#   PG_PASSWORD            [pg-password]  of the role provisioning (set when the cluster is made)
#   PG_BIN                 [newest /usr/lib/postgresql/*/bin]  `make postgres-server` installs it
#   PYTHON                 [<repo>/.venv/bin/python, else python3]  interpreter that has secantusdb
#   INFRA_TIMEOUT          [90]     seconds `up` waits for each component to answer
#   STOP_TIMEOUT           [20]     seconds `down` waits after SIGTERM before SIGKILL
#   KAFKA_HEAP_OPTS        [-Xms256m -Xmx1g]
#   MONGO_CACHE_SIZE       [256M]   WiredTiger cache (secantusdb's own default is 1G)
#   FOLLOW                 [0]      `logs` follows (tail -f) when 1
#
# Several instances can run side by side as long as each gets its own INFRA_DIR
# and ports (tests vs `make run`). The Kafka jars are shared: <repo>/.infra/jars.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOST=127.0.0.1

INFRA_DIR="${INFRA_DIR:-$REPO_DIR/.infra/run}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
MONGO_PORT="${MONGO_PORT:-27017}"
LDAP_PORT="${LDAP_PORT:-3389}"
LDAP_ADMIN_PASSWORD="${LDAP_ADMIN_PASSWORD:-admin-password}"
LDAP_READER_PASSWORD="${LDAP_READER_PASSWORD:-reader-password}"
SLAPD="${SLAPD:-/usr/sbin/slapd}"
PG_PORT="${PG_PORT:-5433}"
PG_PASSWORD="${PG_PASSWORD:-pg-password}"
PG_BIN="${PG_BIN:-$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n1)}"
INFRA_TIMEOUT="${INFRA_TIMEOUT:-90}"
STOP_TIMEOUT="${STOP_TIMEOUT:-20}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
MONGO_CACHE_SIZE="${MONGO_CACHE_SIZE:-256M}"
FOLLOW="${FOLLOW:-0}"

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$REPO_DIR/.venv/bin/python" ]]; then
    PYTHON="$REPO_DIR/.venv/bin/python"
  else
    PYTHON="$(command -v python3 || true)"
  fi
fi
# The probes are stdlib-only, so any python3 will do; prefer the system one so a
# broken venv can't make a healthy broker look dead.
PROBE_PYTHON="$(command -v python3 || echo "$PYTHON")"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

KAFKA_POM="$REPO_DIR/infra/kafka/pom.xml"
KAFKA_LOG4J="$REPO_DIR/infra/kafka/log4j2.properties"
# Single source of truth for the version is the pom; sed is much faster than `mvn help:evaluate`.
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM" | head -n1)"
JARS_ROOT="$REPO_DIR/.infra/jars"
KAFKA_JARS="$JARS_ROOT/kafka-$KAFKA_VERSION"
KAFKA_JARS_MARKER="$KAFKA_JARS/.complete"

KAFKA_DIR="$INFRA_DIR/kafka"
KAFKA_LOG="$KAFKA_DIR/kafka.log"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_PID="$INFRA_DIR/kafka.pid"
MONGO_DIR="$INFRA_DIR/mongo"
MONGO_LOG="$MONGO_DIR/mongo.log"
MONGO_CONF="$MONGO_DIR/secantusd.toml"
MONGO_PID="$INFRA_DIR/mongo.pid"
LDAP_DIR="$INFRA_DIR/ldap"
LDAP_LOG="$LDAP_DIR/slapd.log"
LDAP_CONFIG="$LDAP_DIR/slapd.d"
LDAP_PID="$INFRA_DIR/ldap.pid"
LDAP_TEMPLATES="$REPO_DIR/infra/ldap"
PG_DIR="$INFRA_DIR/postgres"
PG_DATA="$PG_DIR/data"  # elsewhere when the postgres user cannot reach PG_DIR (pg_cluster_home)
PG_LOG="$PG_DIR/postgres.log"
PG_PID="$INFRA_DIR/postgres.pid"

log() { echo "infra: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- processes

# Is any live (non-zombie) process still in process group $1? Scans /proc instead
# of `kill -0 -PGID` because an exited child of a non-reaping PID 1 stays a zombie
# forever and would otherwise look alive.
group_alive() {
  local pgid="$1" f stat rest state pgrp
  for f in /proc/[0-9]*/stat; do
    { read -r stat <"$f"; } 2>/dev/null || continue  # builtin read: no fork per process
    rest="${stat##*) }"  # drop "pid (comm) " -- comm may contain spaces
    read -r state _ pgrp _ <<<"$rest"  # fields: state ppid pgrp ...
    [[ "$pgrp" == "$pgid" && "$state" != Z ]] && return 0
  done
  return 1
}

# Print the pid from pid file $1 if that process is alive and is ours: its command
# line must mention $2 (a path under INFRA_DIR), so a recycled pid is never trusted.
live_pid() {
  local pidfile="$1" needle="$2" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(<"$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  grep -qF -- "$needle" <(tr '\0' ' ' <"/proc/$pid/cmdline") || return 1
  group_alive "$pid" || return 1
  echo "$pid"
}

port_open() {  # bash's /dev/tcp: no nc/ss needed just to see whether something listens
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# The detached child, run as: bash -c "$SPAWN_CHILD" PIDFILE WORKDIR CMD...
# It records its own pid (setsid forks when the caller is already a group leader,
# e.g. with job control on, so $! is not reliable), closes every inherited fd
# above 2 (a caller's pipe -- make's jobserver, a CI runner's -- held open by a
# daemon makes that caller wait for EOF forever), then becomes CMD.
# shellcheck disable=SC2016  # expanded by the inner bash
SPAWN_CHILD='cd "$1" || exit 1
shift
echo $$ >"$0.tmp" && mv "$0.tmp" "$0" || exit 1
for fd in /proc/$$/fd/*; do fd=${fd##*/}; if ((fd > 2)); then exec {fd}>&-; fi; done
exec "$@"'

# Run "$@" detached in a new session, so it outlives this script and the
# caller's terminal, and `down` can signal its whole process group. A simple
# background command is forked and exec'd directly, so no shell lingers holding
# the caller's stdout/stderr or the instance lock (fd 8).
spawn() {
  local pidfile="$1" logfile="$2" workdir="$3"
  shift 3
  rm -f "$pidfile"
  setsid bash -c "$SPAWN_CHILD" "$pidfile" "$workdir" "$@" </dev/null >>"$logfile" 2>&1 8>&- &
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s "$pidfile" ]] && return 0
    sleep 0.05
  done
  die "process did not start (no pid file $pidfile); see $logfile"
}

# Wait until "$probe" succeeds; fail early if the process dies meanwhile.
wait_ready() {
  local name="$1" pid="$2" logfile="$3"
  shift 3
  local deadline=$((SECONDS + INFRA_TIMEOUT))
  while ((SECONDS < deadline)); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    if ! group_alive "$pid"; then
      log "$name exited during startup; last 40 lines of $logfile:"
      tail -n 40 "$logfile" >&2 || true
      return 1
    fi
    sleep 0.5
  done
  log "$name did not become ready within ${INFRA_TIMEOUT}s; last 40 lines of $logfile:"
  tail -n 40 "$logfile" >&2 || true
  return 1
}

stop_component() {
  local name="$1" pidfile="$2" needle="$3" pid i
  if ! pid="$(live_pid "$pidfile" "$needle")"; then
    rm -f "$pidfile"
    echo "$name not running"
    return 0
  fi
  # SIGTERM lets Kafka do a controlled shutdown and WiredTiger checkpoint cleanly.
  kill -TERM -- "-$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 4; i++)); do
    group_alive "$pid" || break
    sleep 0.25
  done
  if group_alive "$pid"; then
    log "$name (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
      group_alive "$pid" || break
      sleep 0.25
    done
  fi
  rm -f "$pidfile"
  echo "$name stopped (pid $pid)"
}

# ---------------------------------------------------------------- kafka

kafka_probe() { "$PROBE_PYTHON" "$REPO_DIR/infra/check_kafka.py" "$HOST:$KAFKA_PORT"; }
kafka_live_pid() { live_pid "$KAFKA_PID" "$KAFKA_PROPS"; }

# Fetch the broker jars once per Kafka version into the git-ignored .infra/jars.
# The marker is written only after a complete copy, so an interrupted fetch is
# redone; flock serialises concurrent `up`s (tests and `make run` at once).
ensure_kafka_jars() {
  [[ -f "$KAFKA_JARS_MARKER" ]] && return 0
  [[ -n "$KAFKA_VERSION" ]] || die "cannot read <kafka.version> from $KAFKA_POM"
  command -v mvn >/dev/null || die "mvn not found; Maven is needed once to fetch the Kafka jars"
  mkdir -p "$JARS_ROOT"
  (
    flock 9
    [[ -f "$KAFKA_JARS_MARKER" ]] && exit 0
    log "fetching Kafka $KAFKA_VERSION jars with Maven into $KAFKA_JARS (first run only)"
    rm -rf "$KAFKA_JARS"
    # Even with -q, Maven 3.8 emits stray ANSI resets; keep its output for failures only.
    local mvn_out="$JARS_ROOT/mvn-fetch.log"
    if ! mvn -B -q -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies \
      -DoutputDirectory="$KAFKA_JARS" >"$mvn_out" 2>&1; then
      cat "$mvn_out" >&2
      rm -rf "$KAFKA_JARS"
      die "Maven could not fetch the Kafka jars (output above, also in $mvn_out)"
    fi
    ls "$KAFKA_JARS"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null || die "kafka_2.13 jar missing after fetch"
    date -u +%FT%TZ >"$KAFKA_JARS_MARKER"
  ) 9>"$JARS_ROOT/.lock"
}

write_kafka_properties() {
  # Regenerated on every start so port/dir changes take effect. Static
  # controller.quorum.voters (rather than 4.x dynamic quorum via
  # controller.quorum.bootstrap.servers + `format --standalone`) keeps the
  # controller address out of the formatted metadata log, so an existing data
  # dir still works if KAFKA_CONTROLLER_PORT changes.
  cat >"$KAFKA_PROPS" <<EOF
# Generated by scripts/infra.sh -- edits are overwritten on the next \`up\`.
node.id=1
process.roles=broker,controller
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_DIR/data

# Single node: internal topics cannot have more than one replica.
offsets.topic.replication.factor=1
# One __consumer_offsets partition instead of 50: the first consumer group
# comes up faster and the log stays readable; one broker gains nothing from more.
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
default.replication.factor=1
num.partitions=3

# Tests join and leave groups constantly; don't wait 3 s for more members.
group.initial.rebalance.delay.ms=0
# The project creates its topics explicitly; a typo must not silently make a new one.
auto.create.topics.enable=false
EOF
}

kafka_up() {
  local pid
  if pid="$(kafka_live_pid)"; then
    if kafka_probe; then
      echo "kafka already running on $HOST:$KAFKA_PORT"
      return 0
    fi
    # Alive but not answering yet: most likely another `up` is mid-start.
    log "kafka (pid $pid) is running but not answering yet; waiting"
    wait_ready kafka "$pid" "$KAFKA_LOG" kafka_probe || die "kafka not ready; try 'scripts/infra.sh down kafka'"
    echo "kafka running on $HOST:$KAFKA_PORT"
    return 0
  fi
  local port
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    port_open "$port" && die "port $port is already in use by a process this INFRA_DIR ($INFRA_DIR) did not start"
  done
  ensure_kafka_jars
  command -v "$JAVA" >/dev/null || die "java not found (Kafka $KAFKA_VERSION needs Java 17+)"
  mkdir -p "$KAFKA_DIR/data"
  write_kafka_properties

  local jvm_log=(-Dlog4j2.configurationFile="$KAFKA_LOG4J" -Dkafka.log.file="$KAFKA_LOG")
  # KRaft storage must be formatted exactly once; meta.properties marks that.
  if [[ ! -f "$KAFKA_DIR/data/meta.properties" ]]; then
    local cluster_id
    # Same format as `kafka-storage random-uuid` (base64url of 16 random bytes),
    # without paying for a JVM start.
    # Kafka's own ids never start with '-' (the storage tool would read one as an option),
    # so draw again when base64 happens to give one: 1 run in 64 failed before this.
    cluster_id="$("$PROBE_PYTHON" -c '
import base64, uuid
while True:
    i = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not i.startswith("-"):
        print(i)
        break
')"
    if ! "$JAVA" "${jvm_log[@]}" -cp "$KAFKA_JARS/*" kafka.tools.StorageTool format \
      --cluster-id "$cluster_id" --config "$KAFKA_PROPS" >>"$KAFKA_LOG" 2>&1; then
      log "formatting Kafka storage failed; last 40 lines of $KAFKA_LOG:"
      tail -n 40 "$KAFKA_LOG" >&2
      exit 1
    fi
  fi

  # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS is a list of JVM flags
  spawn "$KAFKA_PID" "$KAFKA_LOG" "$KAFKA_DIR" \
    "$JAVA" $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    "${jvm_log[@]}" -cp "$KAFKA_JARS/*" kafka.Kafka "$KAFKA_PROPS"
  pid="$(<"$KAFKA_PID")"
  log "kafka $KAFKA_VERSION starting (pid $pid, log $KAFKA_LOG)"
  if ! wait_ready kafka "$pid" "$KAFKA_LOG" kafka_probe; then
    stop_component kafka "$KAFKA_PID" "$KAFKA_PROPS" >/dev/null
    exit 1
  fi
  echo "kafka running on $HOST:$KAFKA_PORT"
}

# ---------------------------------------------------------------- mongo

mongo_probe() { "$PROBE_PYTHON" "$REPO_DIR/infra/check_mongo.py" "$HOST:$MONGO_PORT"; }
mongo_live_pid() { live_pid "$MONGO_PID" "$MONGO_DIR/data"; }

mongo_up() {
  local pid
  if pid="$(mongo_live_pid)"; then
    if mongo_probe; then
      echo "mongo already running on $HOST:$MONGO_PORT"
      return 0
    fi
    log "mongo (pid $pid) is running but not answering yet; waiting"
    wait_ready mongo "$pid" "$MONGO_LOG" mongo_probe || die "mongo not ready; try 'scripts/infra.sh down mongo'"
    echo "mongo running on $HOST:$MONGO_PORT"
    return 0
  fi
  port_open "$MONGO_PORT" && die "port $MONGO_PORT is already in use by a process this INFRA_DIR ($INFRA_DIR) did not start"
  [[ -n "$PYTHON" && -x "$(command -v "$PYTHON" || true)" ]] || die "no Python interpreter found (set PYTHON or run 'make venv')"
  if ! "$PYTHON" -c 'import secantus.cli' 2>/dev/null; then
    die "secantusdb is not installed for $PYTHON -- run 'make venv' (or '$PYTHON -m pip install secantusdb==0.7.0b3')"
  fi
  mkdir -p "$MONGO_DIR/data"
  # An explicit --config turns off secantusdb's auto-discovery of ./secantusd.toml,
  # ~/.secantus/ and /etc/secantus/, so a stray file on a machine can't change ports or paths.
  cat >"$MONGO_CONF" <<'EOF'
# Generated by scripts/infra.sh; every setting is passed as a command-line flag.
EOF
  # No --standalone: secantusdb then advertises itself as a one-member replica set
  # primary, which is what transactions and change streams need in pymongo.
  spawn "$MONGO_PID" "$MONGO_LOG" "$MONGO_DIR" \
    env PYTHONUNBUFFERED=1 "$PYTHON" -m secantus --config "$MONGO_CONF" \
    --host "$HOST" --port "$MONGO_PORT" --storage-path "$MONGO_DIR/data" \
    --cache-size "$MONGO_CACHE_SIZE" --log-level INFO
  pid="$(<"$MONGO_PID")"
  log "mongo (secantusdb) starting (pid $pid, log $MONGO_LOG)"
  if ! wait_ready mongo "$pid" "$MONGO_LOG" mongo_probe; then
    stop_component mongo "$MONGO_PID" "$MONGO_DIR/data" >/dev/null
    exit 1
  fi
  echo "mongo running on $HOST:$MONGO_PORT"
}

# ---------------------------------------------------------------- ldap

# The client tools read /etc/ldap/ldap.conf and ~/.ldaprc unless told not to.
ldap_probe() {
  LDAPNOINIT=1 ldapsearch -x -LLL -o nettimeout=2 -H "ldap://$HOST:$LDAP_PORT" \
    -s base -b '' namingContexts >/dev/null
}
ldap_live_pid() { live_pid "$LDAP_PID" "$LDAP_CONFIG"; }

fill_ldap_template() {  # $1 template, $2 output; values never contain '|'
  local admin_hash reader_hash
  admin_hash="$("$(dirname "$SLAPD")/slappasswd" -s "$LDAP_ADMIN_PASSWORD")"
  reader_hash="$("$(dirname "$SLAPD")/slappasswd" -s "$LDAP_READER_PASSWORD")"
  sed -e "s|@LDAP_DIR@|$LDAP_DIR|g" -e "s|@SCHEMA_DIR@|$LDAP_TEMPLATES/schema|g" \
    -e "s|@MODULE_DIR@|${LDAP_MODULE_DIR:-/usr/lib/ldap}|g" \
    -e "s|@ADMIN_HASH@|$admin_hash|g" -e "s|@READER_HASH@|$reader_hash|g" "$1" >"$2"
}

# cn=config and the starting entries are made once per INFRA_DIR with slapadd; a data folder
# that exists keeps its entries (and its administrator password) across restarts.
make_ldap_database() {
  [[ -f "$LDAP_DIR/.complete" ]] && return 0
  rm -rf "$LDAP_CONFIG" "$LDAP_DIR/data"
  mkdir -p "$LDAP_CONFIG" "$LDAP_DIR/data"
  fill_ldap_template "$LDAP_TEMPLATES/config.ldif" "$LDAP_DIR/config.ldif"
  fill_ldap_template "$LDAP_TEMPLATES/base.ldif" "$LDAP_DIR/base.ldif"
  local slapadd
  slapadd="$(dirname "$SLAPD")/slapadd"
  if ! "$slapadd" -n 0 -F "$LDAP_CONFIG" -l "$LDAP_DIR/config.ldif" >>"$LDAP_LOG" 2>&1 ||
    ! "$slapadd" -n 1 -F "$LDAP_CONFIG" -l "$LDAP_DIR/base.ldif" >>"$LDAP_LOG" 2>&1; then
    tail -n 40 "$LDAP_LOG" >&2
    die "slapadd could not build the directory in $LDAP_DIR (output above)"
  fi
  rm -f "$LDAP_DIR/config.ldif" "$LDAP_DIR/base.ldif"  # they hold the password hashes
  date -u +%FT%TZ >"$LDAP_DIR/.complete"
}

ldap_up() {
  local pid
  if pid="$(ldap_live_pid)"; then
    if ldap_probe; then
      echo "ldap already running on $HOST:$LDAP_PORT"
      return 0
    fi
    log "ldap (pid $pid) is running but not answering yet; waiting"
    wait_ready ldap "$pid" "$LDAP_LOG" ldap_probe || die "ldap not ready; try 'scripts/infra.sh down ldap'"
    echo "ldap running on $HOST:$LDAP_PORT"
    return 0
  fi
  port_open "$LDAP_PORT" && die "port $LDAP_PORT is already in use by a process this INFRA_DIR ($INFRA_DIR) did not start"
  [[ -x "$SLAPD" ]] || die "$SLAPD not found; run 'make ldap-server' (Debian's slapd and ldap-utils)"
  command -v ldapsearch >/dev/null || die "ldapsearch not found; run 'make ldap-server'"
  mkdir -p "$LDAP_DIR"
  make_ldap_database
  # -d 0: stay in the foreground (so the pid and the process group are ours) and log only
  # what slapd prints on its own (startup failures).
  spawn "$LDAP_PID" "$LDAP_LOG" "$LDAP_DIR" \
    "$SLAPD" -d 0 -F "$LDAP_CONFIG" -h "ldap://$HOST:$LDAP_PORT/"
  pid="$(<"$LDAP_PID")"
  log "ldap (slapd) starting (pid $pid, log $LDAP_LOG)"
  if ! wait_ready ldap "$pid" "$LDAP_LOG" ldap_probe; then
    stop_component ldap "$LDAP_PID" "$LDAP_CONFIG" >/dev/null
    exit 1
  fi
  echo "ldap running on $HOST:$LDAP_PORT (suffix dc=example,dc=org, admin cn=admin,dc=example,dc=org)"
}

# ---------------------------------------------------------------- postgres

# initdb and postgres refuse to run as root: as root they run as the `postgres` user, which
# then owns the cluster's folder (and only it).
as_pg_user() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}
give_to_pg_user() { if [[ "$(id -u)" == 0 ]]; then chown postgres: "$@"; fi; }

# As root the cluster must be a folder the postgres user can reach: a clone in a folder only
# root may enter (`mktemp -d` makes one 0700, so does /root) gets its cluster under /var/tmp
# instead, one per PG_DIR, rather than opening the user's folders to other users. The marker,
# pid and log stay in PG_DIR; `infra.sh forget postgres` (run by `make clean`) removes it.
pg_cluster_home() {
  local dir="$PG_DIR"
  [[ "$(id -u)" == 0 ]] || { echo "$PG_DIR"; return; }
  while [[ ! -d "$dir" ]]; do dir="$(dirname "$dir")"; done
  if runuser -u postgres -- test -x "$dir" 2>/dev/null; then
    echo "$PG_DIR"
  else
    echo "/var/tmp/provisioning-postgres/$(printf '%s' "$PG_DIR" | sha256sum | cut -c1-16)"
  fi
}
PG_HOME="$(pg_cluster_home)"
PG_DATA="$PG_HOME/data"
postgres_probe() { "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -d provisioning -t 2; }
postgres_live_pid() { live_pid "$PG_PID" "$PG_DATA"; }

# The cluster is made once per INFRA_DIR: superuser role `provisioning` (password PG_PASSWORD)
# and database `provisioning`, password authentication on 127.0.0.1 only, no Unix socket.
make_postgres_cluster() {
  [[ -f "$PG_DIR/.complete" ]] && return 0
  rm -rf "$PG_DATA"
  mkdir -p "$PG_DATA"
  give_to_pg_user "$PG_HOME" "$PG_DATA"
  [[ "$PG_HOME" == "$PG_DIR" ]] ||
    log "postgres cannot enter $PG_DIR: its cluster is $PG_DATA ('make clean' removes it)"
  local pwfile="$PG_HOME/.pw"
  (umask 077 && printf '%s\n' "$PG_PASSWORD" >"$pwfile")
  give_to_pg_user "$pwfile"
  if ! as_pg_user "$PG_BIN/initdb" -D "$PG_DATA" -U provisioning --pwfile="$pwfile" \
    --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 --no-sync >>"$PG_LOG" 2>&1; then
    rm -f "$pwfile"
    tail -n 40 "$PG_LOG" >&2
    die "initdb could not make the cluster in $PG_DATA (output above)"
  fi
  rm -f "$pwfile"
  printf '%s\n' "host all all 127.0.0.1/32 scram-sha-256" >"$PG_DATA/pg_hba.conf"
  # Throw-away data: no durability, as for the other servers the project starts.
  cat >>"$PG_DATA/postgresql.conf" <<EOF
listen_addresses = '$HOST'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  date -u +%FT%TZ >"$PG_DIR/.complete"
}

postgres_up() {
  local pid
  if pid="$(postgres_live_pid)"; then
    if postgres_probe; then
      echo "postgres already running on $HOST:$PG_PORT"
      return 0
    fi
    log "postgres (pid $pid) is running but not answering yet; waiting"
    wait_ready postgres "$pid" "$PG_LOG" postgres_probe || die "postgres not ready; try 'scripts/infra.sh down postgres'"
    echo "postgres running on $HOST:$PG_PORT"
    return 0
  fi
  port_open "$PG_PORT" && die "port $PG_PORT is already in use by a process this INFRA_DIR ($INFRA_DIR) did not start"
  [[ -x "$PG_BIN/initdb" ]] || die "PostgreSQL not found under /usr/lib/postgresql; run 'make postgres-server'"
  mkdir -p "$PG_DIR"
  touch "$PG_LOG"
  give_to_pg_user "$PG_DIR" "$PG_LOG"
  make_postgres_cluster
  # The server in the foreground, so the pid and the process group are ours.
  local as_user=()
  if [[ "$(id -u)" == 0 ]]; then
    # setpriv execs (runuser would stay as a parent): the pid recorded is the postmaster's.
    as_user=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  fi
  spawn "$PG_PID" "$PG_LOG" "$PG_DIR" \
    "${as_user[@]}" "$PG_BIN/postgres" -D "$PG_DATA" -p "$PG_PORT"
  pid="$(<"$PG_PID")"
  log "postgres starting (pid $pid, log $PG_LOG)"
  if ! wait_ready postgres "$pid" "$PG_LOG" postgres_probe; then
    stop_component postgres "$PG_PID" "$PG_DATA" >/dev/null
    exit 1
  fi
  # The database the URL names; made once (createdb fails harmlessly when it exists).
  PGPASSWORD="$PG_PASSWORD" "$PG_BIN/createdb" -h "$HOST" -p "$PG_PORT" -U provisioning \
    provisioning >/dev/null 2>&1 || true
  echo "postgres running on $HOST:$PG_PORT (postgresql://provisioning@$HOST:$PG_PORT/provisioning)"
}

# ---------------------------------------------------------------- commands

status_one() {
  local name="$1" addr="$2" pid
  if pid="$("${name}_live_pid")" && "${name}_probe"; then
    echo "$name running on $addr (pid $pid)"
    return 0
  elif [[ -n "${pid:-}" ]]; then
    echo "$name starting or unhealthy on $addr (pid $pid, not answering)"
  else
    echo "$name stopped ($addr)"
  fi
  return 1
}

# Serialise up/down per INFRA_DIR: two concurrent `up`s (say, parallel test
# sessions) would otherwise both start a broker and overwrite each other's pid file.
# The later caller waits, then finds the components running.
lock_instance() {
  exec 8>"$INFRA_DIR/.lock"
  flock -w "$((INFRA_TIMEOUT + 60))" 8 || die "another infra.sh up/down holds $INFRA_DIR/.lock"
}

usage() {
  echo "usage: $0 up|down|status|logs|forget [kafka|mongo|ldap|postgres]" >&2
  exit 2
}

main() {
  local cmd="${1:-}" components
  case "${2:-all}" in
    all) components=(kafka mongo ldap postgres) ;;
    kafka | mongo | ldap | postgres) components=("$2") ;;
    *) usage ;;
  esac
  [[ $# -le 2 ]] || usage
  local c rc=0
  case "$cmd" in
    up)
      mkdir -p "$INFRA_DIR"
      lock_instance
      for c in "${components[@]}"; do "${c}_up"; done
      ;;
    down)
      [[ -d "$INFRA_DIR" ]] && lock_instance
      for c in "${components[@]}"; do
        case "$c" in
          kafka) stop_component kafka "$KAFKA_PID" "$KAFKA_PROPS" ;;
          mongo) stop_component mongo "$MONGO_PID" "$MONGO_DIR/data" ;;
          ldap) stop_component ldap "$LDAP_PID" "$LDAP_CONFIG" ;;
          postgres) stop_component postgres "$PG_PID" "$PG_DATA" ;;
        esac
      done
      ;;
    forget)
      # What lives outside INFRA_DIR, which `make clean` removes whole: PostgreSQL's cluster
      # under /var/tmp when the postgres user could not enter the clone. Stopped first.
      [[ -d "$INFRA_DIR" ]] && lock_instance
      for c in "${components[@]}"; do
        if [[ "$c" == postgres && "$PG_HOME" != "$PG_DIR" && -d "$PG_HOME" ]]; then
          stop_component postgres "$PG_PID" "$PG_DATA"
          rm -rf "$PG_HOME"
          log "removed postgres cluster $PG_HOME"
        fi
      done
      ;;
    status)
      for c in "${components[@]}"; do
        case "$c" in
          kafka) status_one kafka "$HOST:$KAFKA_PORT" || rc=3 ;;
          mongo) status_one mongo "$HOST:$MONGO_PORT" || rc=3 ;;
          ldap) status_one ldap "$HOST:$LDAP_PORT" || rc=3 ;;
          postgres) status_one postgres "$HOST:$PG_PORT" || rc=3 ;;
        esac
      done
      return "$rc"
      ;;
    logs)
      local files=()
      for c in "${components[@]}"; do
        case "$c" in
          kafka) files+=("$KAFKA_LOG") ;;
          mongo) files+=("$MONGO_LOG") ;;
          ldap) files+=("$LDAP_LOG") ;;
          postgres) files+=("$PG_LOG") ;;
        esac
      done
      local existing=() f
      for f in "${files[@]}"; do [[ -f "$f" ]] && existing+=("$f"); done
      ((${#existing[@]})) || { echo "no logs yet under $INFRA_DIR"; return 0; }
      if [[ "$FOLLOW" == 1 ]]; then
        exec tail -n 100 -F "${existing[@]}"
      fi
      tail -n 100 "${existing[@]}"
      ;;
    *) usage ;;
  esac
}

# On one line so bash has parsed the exit before running main: a copy of this file
# edited while an `up` is running can then never be read past this point.
{ main "$@"; exit; }
