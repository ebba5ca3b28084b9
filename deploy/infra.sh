#!/usr/bin/env bash
# Local infrastructure without Docker: Apache Kafka (KRaft, single node) from Maven Central and a
# project-local PostgreSQL cluster from Debian's packages.
#   deploy/infra.sh install|up|down|status|wipe|kafka-setup
# Everything lives under $US_STATE_DIR (default /var/tmp/unified-seller); logs in $US_STATE_DIR/logs.
# Kafka runs with SASL/SCRAM-SHA-512 over TLS and ACLs. The local secrets (operator token, SCRAM passwords,
# identity's CSRF secret and key-encryption key) are generated once into $US_STATE_DIR/secrets.env (mode
# 0600), the CA and broker certificate into $US_STATE_DIR/tls; clients' settings in $US_STATE_DIR/kafka.env.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
STATE="${US_STATE_DIR:-/var/tmp/unified-seller}"
LOGS="$STATE/logs"
SECRETS="$STATE/secrets.env"
TLS="$STATE/tls"
KAFKA_VERSION="3.9.1"
KAFKA_HOME="$STATE/kafka"
# KAFKA_LIB_DIR: jars fetched elsewhere (the test infrastructure reuses the platform's).
KAFKA_LIB="${KAFKA_LIB_DIR:-$KAFKA_HOME/lib-$KAFKA_VERSION}"
KAFKA_DATA="$KAFKA_HOME/data"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP="${KAFKA_HEAP:-1g}"
PG_VERSION="${PG_VERSION:-15}"
PG_BIN="/usr/lib/postgresql/$PG_VERSION/bin"
PG_HOME="$STATE/pg"
PG_DATA="$PG_HOME/data"
PG_PORT="${PG_PORT:-55432}"
DATABASES="identity regions orders_na orders_eu orders_fe messages_na messages_eu messages_fe seller_view billing listings web"

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

# --- secrets and TLS -------------------------------------------------------------------------------
PRINCIPALS=""  # the services' Kafka principals (unified_shared.topics.SERVICE_ACCESS), read once by load_principals
load_principals() {
  [ -n "$PRINCIPALS" ] && return
  [ -x "$VENV/bin/python" ] || die "no Python environment in $VENV: run \`make install\` first"
  PRINCIPALS=$("$VENV/bin/python" -m unified_shared.broker_acl --principals) || die "could not read the access table"
}
password_var() { local p="${1^^}"; echo "KAFKA_PASSWORD_${p//-/_}"; }  # svc-seller-view -> KAFKA_PASSWORD_SVC_SELLER_VIEW
secret() { grep -m1 "^$1=" "$SECRETS" | cut -d= -f2-; }

# Adds every missing secret to secrets.env; never changes one that exists (the broker stores SCRAM hashes).
ensure_secrets() {
  mkdir -p "$STATE"
  (umask 077; touch "$SECRETS")
  chmod 600 "$SECRETS"
  local name value added=0
  load_principals
  for name in OPERATOR_TOKEN CSRF_SECRET KAFKA_ADMIN_PASSWORD KAFKA_CONTROLLER_PASSWORD KAFKA_KEYSTORE_PASSWORD \
      IDENTITY_KEY_ENCRYPTION_KEY $(for p in $PRINCIPALS; do password_var "$p"; done); do
    grep -q "^$name=" "$SECRETS" && continue
    if [ "$name" = IDENTITY_KEY_ENCRYPTION_KEY ]; then
      value=$(openssl rand -base64 32 | tr '+/' '-_')  # 32 random bytes, url-safe base64 (a Fernet key)
    else
      value=$(openssl rand -hex 24)
    fi
    printf '%s=%s\n' "$name" "$value" >>"$SECRETS"
    added=$((added + 1))
  done
  [ "$added" -eq 0 ] || say "generated $added local secrets into $SECRETS (mode 0600)"
}

# A local CA and a broker certificate for 127.0.0.1 / localhost, made once.
ensure_tls() {
  [ -f "$TLS/broker.p12" ] && [ -f "$TLS/ca.crt" ] && return
  say "making a local CA and the broker's TLS certificate in $TLS"
  mkdir -p "$TLS"
  chmod 755 "$TLS"  # ca.crt is for every client; the keys inside are 0600
  (
    cd "$TLS"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=unified-seller local CA" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout broker.key -out broker.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext  # clients dial 127.0.0.1: the SAN must name it
    openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 -extfile san.ext \
      -out broker.crt 2>/dev/null
    openssl pkcs12 -export -name broker -in broker.crt -inkey broker.key -certfile ca.crt -out broker.p12 \
      -passout "pass:$(secret KAFKA_KEYSTORE_PASSWORD)"
    chmod 644 ca.crt
  ) || die "making the TLS certificates failed"
}

# Non-secret client settings; a client adds KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD (see secrets.env).
write_client_env() {
  cat >"$STATE/kafka.env" <<EOF
KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT
KAFKA_SECURITY_PROTOCOL=SASL_SSL
KAFKA_SASL_MECHANISM=SCRAM-SHA-512
KAFKA_SSL_CAFILE=$TLS/ca.crt
EOF
  (umask 077; cat >"$KAFKA_HOME/admin.properties" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(secret KAFKA_ADMIN_PASSWORD)";
ssl.truststore.type=PEM
ssl.truststore.location=$TLS/ca.crt
EOF
  )
}

# --- kafka -----------------------------------------------------------------------------------------
kafka_pid() { [ -f "$KAFKA_HOME/kafka.pid" ] && cat "$KAFKA_HOME/kafka.pid" || true; }
kafka_running() { local p; p=$(kafka_pid); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

kafka_up() {
  if kafka_running; then say "kafka already running (pid $(kafka_pid)) on 127.0.0.1:$KAFKA_PORT"; return; fi
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    port_open "$p" && die "port $p is held by another process: stop it or set KAFKA_PORT / KAFKA_CONTROLLER_PORT"
  done
  mkdir -p "$KAFKA_HOME" "$KAFKA_DATA" "$LOGS"
  chmod 700 "$KAFKA_HOME"
  ensure_secrets
  ensure_tls
  write_client_env
  (umask 077; sed -e "s#@DATA@#$KAFKA_DATA#" -e "s#@PORT@#$KAFKA_PORT#g" -e "s#@CPORT@#$KAFKA_CONTROLLER_PORT#g" \
    -e "s#@TLS@#$TLS#g" -e "s#@ADMIN_PASSWORD@#$(secret KAFKA_ADMIN_PASSWORD)#" \
    -e "s#@CONTROLLER_PASSWORD@#$(secret KAFKA_CONTROLLER_PASSWORD)#g" \
    -e "s#@KEYSTORE_PASSWORD@#$(secret KAFKA_KEYSTORE_PASSWORD)#g" \
    "$HERE/kafka/server.properties.in" > "$KAFKA_HOME/server.properties")
  sed -e "s#@LOGS@#$LOGS#" "$HERE/kafka/log4j.properties.in" > "$KAFKA_HOME/log4j.properties"
  if [ -f "$KAFKA_DATA/meta.properties" ] && [ ! -f "$KAFKA_HOME/scram-users" ]; then
    die "the Kafka data in $KAFKA_DATA predates SASL/ACLs: run \`deploy/infra.sh wipe\` (drops local Kafka and PostgreSQL data), then \`make infra-up\`"
  fi
  if [ ! -f "$KAFKA_DATA/meta.properties" ]; then
    # SCRAM users exist before the first start: the broker itself logs in as admin.
    local id scram=() p
    id=$(java -cp "$KAFKA_LIB/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
    scram+=(--add-scram "SCRAM-SHA-512=[name=admin,password=$(secret KAFKA_ADMIN_PASSWORD)]")
    for p in $PRINCIPALS; do
      scram+=(--add-scram "SCRAM-SHA-512=[name=$p,password=$(secret "$(password_var "$p")")]")
    done
    java -Dlog4j.configuration="file:$KAFKA_HOME/log4j.properties" -cp "$KAFKA_LIB/*" \
      kafka.tools.StorageTool format -t "$id" -c "$KAFKA_HOME/server.properties" "${scram[@]}" \
      >>"$LOGS/kafka-format.log" 2>&1 || die "kafka storage format failed: see $LOGS/kafka-format.log"
    printf '%s\n' admin $PRINCIPALS >"$KAFKA_HOME/scram-users"
  fi
  local seen=0
  [ -f "$LOGS/kafka-server.log" ] && seen=$(wc -l <"$LOGS/kafka-server.log")
  say "starting kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (SASL_SSL, heap $KAFKA_HEAP)"
  nohup java -Xms256m -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$KAFKA_HOME/log4j.properties" -Dkafka.logs.dir="$LOGS" \
    -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_HOME/server.properties" >"$LOGS/kafka.out" 2>&1 &
  echo $! > "$KAFKA_HOME/kafka.pid"
  for _ in $(seq 1 120); do
    if ! kafka_running; then die "kafka exited during start: see $LOGS/kafka.out and $LOGS/kafka-server.log"; fi
    if tail -n +"$((seen + 1))" "$LOGS/kafka-server.log" 2>/dev/null | grep -q "Kafka Server started" \
      && port_open "$KAFKA_PORT"; then
      say "kafka ready"; return
    fi
    sleep 1
  done
  die "kafka did not start within 120 s: see $LOGS/kafka-server.log"
}

kafka_tool() { java -Dlog4j.configuration="file:$HERE/kafka/tools-log4j.properties" -cp "$KAFKA_LIB/*" "$@"; }

# Principals added to the access table after the format get their SCRAM user now; then topics and ACLs
# (made from unified_shared.topics.SERVICE_ACCESS) as the admin principal.
kafka_setup() {
  local p
  load_principals
  ensure_secrets  # a principal new to the table gets its password here too when kafka was already running
  for p in $PRINCIPALS; do
    grep -qx "$p" "$KAFKA_HOME/scram-users" && continue
    say "adding SCRAM user $p"
    kafka_tool kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
      --command-config "$KAFKA_HOME/admin.properties" --alter --entity-type users --entity-name "$p" \
      --add-config "SCRAM-SHA-512=[password=$(secret "$(password_var "$p")")]" >/dev/null \
      || die "could not add the SCRAM user $p"
    echo "$p" >>"$KAFKA_HOME/scram-users"
  done
  (
    set -a
    . "$STATE/kafka.env"
    set +a
    KAFKA_SASL_USERNAME=admin KAFKA_SASL_PASSWORD="$(secret KAFKA_ADMIN_PASSWORD)" \
      "$VENV/bin/python" -m unified_shared.broker_acl --bootstrap "127.0.0.1:$KAFKA_PORT"
  ) || die "creating topics and ACLs failed"
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

cmd_up() { cmd_install; pg_up; kafka_up; kafka_setup; }
cmd_down() { kafka_down; pg_down; }
cmd_status() {
  if kafka_running; then say "kafka: running (pid $(kafka_pid)) on 127.0.0.1:$KAFKA_PORT"; else say "kafka: stopped"; fi
  if pg_running; then say "postgres: running on 127.0.0.1:$PG_PORT (data $PG_DATA)"; else say "postgres: stopped"; fi
  say "logs: $LOGS"
}
cmd_wipe() { cmd_down; say "removing $STATE data (jars kept)"; rm -rf "$KAFKA_DATA" "$KAFKA_HOME/scram-users" "$PG_DATA" "$LOGS"; }

case "${1:-}" in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  wipe) cmd_wipe ;;
  kafka-setup) kafka_setup ;;
  # One part alone, for the chaos test (an outage of the database or of the broker while the rest runs).
  pg-up) pg_up ;;
  pg-down) pg_down ;;
  kafka-up) kafka_up ;;
  kafka-down) kafka_down ;;
  *) echo "usage: $0 install|up|down|status|wipe|kafka-setup|pg-up|pg-down|kafka-up|kafka-down" >&2; exit 2 ;;
esac
