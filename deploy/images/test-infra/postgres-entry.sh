#!/bin/sh
# A throwaway PostgreSQL for testcontainers (Debian's package), trust authentication, on the host network.
set -eu
: "${PG_PORT:=5432}"
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
DATA=/tmp/pgdata
"$BIN/initdb" -D "$DATA" -A trust -U postgres -E UTF8 >/dev/null
exec "$BIN/postgres" -D "$DATA" -p "$PG_PORT" -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off
