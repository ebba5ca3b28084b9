#!/usr/bin/env bash
# Local infrastructure without Docker: Apache Kafka (KRaft, single node) from Maven Central and a
# project-local PostgreSQL cluster from Debian's packages.
#   deploy/infra.sh install|up|down|status
# Everything lives under $US_STATE_DIR (default /var/tmp/unified-seller); logs in $US_STATE_DIR/logs.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${US_STATE_DIR:-/var/tmp/unified-seller}"
LOGS="$STATE/logs"
KAFKA_VERSION="3.9.1"
KAFKA_HOME="$STATE/kafka"
KAFKA_LIB="$KAFKA_HOME/lib-$KAFKA_VERSION"
KAFKA_DATA="$KAFKA_HOME/data"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP="${KAFKA_HEAP:-1g}"
PG_VERSION="${PG_VERSION:-15}"
PG_BIN="/usr/lib/postgresql/$PG_VERSION/bin"
PG_HOME="$STATE/pg"
PG_DATA="$PG_HOME/data"
PG_PORT="${PG_PORT:-55432}"
DATABASES="identity regions orders_na orders_eu orders_fe messages_na messages_eu messages_fe seller_view billing web"

say() { printf '[infra] %s\n' "$*" || true; }
die() { printf '[infra] ERROR: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- install ---------------------------------------------------------------------------------------
install_postgres() {
  if [ -x "$PG_BIN/initdb" ]; then return; fi
  say "installing PostgreSQL from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  [ -x "$PG_BIN/initdb" ] || PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  [ -x "$PG_BIN/initdb" ] || die "PostgreSQL binaries not found after install"
}

install_kafka() {
  if [ -f "$KAFKA_LIB/.complete" ]; then return; fi
  if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
    say "installing Java 17 and Maven from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null
  fi
  say "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIB"
  mkdir -p "$KAFKA_LIB"
  mvn -B -q -f "$HERE/kafka/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DoutputDirectory="$KAFKA_LIB" -DincludeScope=runtime
  ls "$KAFKA_LIB"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null || die "kafka jar missing after mvn"
  touch "$KAFKA_LIB/.complete"
}

cmd_install() { mkdir -p "$LOGS"; install_postgres; install_kafka; }

# --- kafka -----------------------------------------------------------------------------------------
kafka_pid() { [ -f "$KAFKA_HOME/kafka.pid" ] && cat "$KAFKA_HOME/kafka.pid" || true; }
kafka_running() { local p; p=$(kafka_pid); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

kafka_up() {
  if kafka_running; then say "kafka already running (pid $(kafka_pid)) on 127.0.0.1:$KAFKA_PORT"; return; fi
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    port_open "$p" && die "port $p is held by another process: stop it or set KAFKA_PORT / KAFKA_CONTROLLER_PORT"
  done
  mkdir -p "$KAFKA_HOME" "$KAFKA_DATA" "$LOGS"
  sed -e "s#@DATA@#$KAFKA_DATA#" -e "s#@PORT@#$KAFKA_PORT#g" -e "s#@CPORT@#$KAFKA_CONTROLLER_PORT#g" \
    "$HERE/kafka/server.properties.in" > "$KAFKA_HOME/server.properties"
  sed -e "s#@LOGS@#$LOGS#" "$HERE/kafka/log4j.properties.in" > "$KAFKA_HOME/log4j.properties"
  if [ ! -f "$KAFKA_DATA/meta.properties" ]; then
    local id
    id=$(java -cp "$KAFKA_LIB/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
    java -Dlog4j.configuration="file:$KAFKA_HOME/log4j.properties" -cp "$KAFKA_LIB/*" \
      kafka.tools.StorageTool format -t "$id" -c "$KAFKA_HOME/server.properties" >>"$LOGS/kafka-format.log" 2>&1 \
      || die "kafka storage format failed: see $LOGS/kafka-format.log"
  fi
  say "starting kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (heap $KAFKA_HEAP)"
  nohup java -Xms256m -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$KAFKA_HOME/log4j.properties" -Dkafka.logs.dir="$LOGS" \
    -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_HOME/server.properties" >"$LOGS/kafka.out" 2>&1 &
  echo $! > "$KAFKA_HOME/kafka.pid"
  for _ in $(seq 1 120); do
    if ! kafka_running; then die "kafka exited during start: see $LOGS/kafka.out and $LOGS/kafka-server.log"; fi
    if grep -q "Kafka Server started" "$LOGS/kafka-server.log" 2>/dev/null && port_open "$KAFKA_PORT"; then
      say "kafka ready"; return
    fi
    sleep 1
  done
  die "kafka did not start within 120 s: see $LOGS/kafka-server.log"
}

kafka_down() {
  if ! kafka_running; then say "kafka not running"; rm -f "$KAFKA_HOME/kafka.pid"; return; fi
  local p; p=$(kafka_pid)
  say "stopping kafka (pid $p)"
  kill "$p"
  for _ in $(seq 1 60); do kill -0 "$p" 2>/dev/null || break; sleep 1; done
  kill -0 "$p" 2>/dev/null && kill -9 "$p" || true
  rm -f "$KAFKA_HOME/kafka.pid"
}

# --- postgres --------------------------------------------------------------------------------------
pg() { runuser -u postgres -- "$@"; }
pg_running() { [ -f "$PG_DATA/postmaster.pid" ] && pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }

pg_up() {
  mkdir -p "$PG_HOME" "$LOGS"
  chown postgres:postgres "$PG_HOME"
  chmod 777 "$LOGS"
  if pg_running; then
    say "postgres already running on 127.0.0.1:$PG_PORT"
  else
    port_open "$PG_PORT" && die "port $PG_PORT is held by another process: stop it or set PG_PORT"
    if [ ! -f "$PG_DATA/PG_VERSION" ]; then
      say "initialising project-local PostgreSQL cluster in $PG_DATA"
      pg "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres -E UTF8 >"$LOGS/postgres-initdb.log" 2>&1 \
        || die "initdb failed: see $LOGS/postgres-initdb.log"
    fi
    say "starting postgres on 127.0.0.1:$PG_PORT"
    pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$LOGS/postgres.log" -w -t 60 start \
      -o "-p $PG_PORT -k $PG_HOME -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=${PG_FSYNC:-on} -c dynamic_shared_memory_type=mmap" \
      >/dev/null || die "postgres failed to start: see $LOGS/postgres.log"
  fi
  for _ in $(seq 1 60); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
    sleep 0.5
  done
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" || die "postgres does not accept clients"
  for db in $DATABASES; do
    if [ -z "$(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'")" ]; then
      psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE \"$db\"" >/dev/null
      say "database $db created"
    fi
  done
  say "postgres ready"
}

pg_down() {
  if pg_running; then
    say "stopping postgres"
    pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
  else
    say "postgres not running"
  fi
}

cmd_up() { cmd_install; pg_up; kafka_up; }
cmd_down() { kafka_down; pg_down; }
cmd_status() {
  if kafka_running; then say "kafka: running (pid $(kafka_pid)) on 127.0.0.1:$KAFKA_PORT"; else say "kafka: stopped"; fi
  if pg_running; then say "postgres: running on 127.0.0.1:$PG_PORT (data $PG_DATA)"; else say "postgres: stopped"; fi
  say "logs: $LOGS"
}
cmd_wipe() { cmd_down; say "removing $STATE data (jars kept)"; rm -rf "$KAFKA_DATA" "$PG_DATA" "$LOGS"; }

case "${1:-}" in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  wipe) cmd_wipe ;;
  *) echo "usage: $0 install|up|down|status|wipe" >&2; exit 2 ;;
esac
