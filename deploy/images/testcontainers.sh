#!/usr/bin/env bash
# Runs a command (a test run) with testcontainers talking to podman's Docker-compatible API, and the Kafka and
# PostgreSQL images the project builds (no public image can be pulled here): a developer with Docker or
# podman on a laptop needs nothing else installed.
#   deploy/images/testcontainers.sh .venv/bin/pytest shared/tests
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
STATE="${US_STATE_DIR:-/var/tmp/unified-seller}"
SOCK="$STATE/podman.sock"
PY="${PY:-$ROOT/.venv/bin/python}"

"$HERE/tools.sh"
"$PY" "$HERE/build.py" --test-infra
set -a; . "$STATE/images/test-infra.env"; set +a

ping() { curl -fs --max-time 2 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; }
started=""
if ! ping; then
  mkdir -p "$STATE/logs"
  "$HERE/podman.sh" system service --time=0 "unix://$SOCK" >>"$STATE/logs/podman-service.log" 2>&1 &
  started=$!
  for _ in $(seq 1 60); do ping && break; sleep 0.5; done
  ping || { echo "[testcontainers] podman's API did not answer on $SOCK" >&2; exit 1; }
fi
stop() { if [ -n "$started" ]; then kill "$started" 2>/dev/null || true; wait "$started" 2>/dev/null || true; fi; }
trap stop EXIT
# TEST_INFRA=testcontainers: the fixtures start their own containers even when a local broker is running.
unset KAFKA_BOOTSTRAP_SERVERS TEST_PG_ADMIN_DSN
export DOCKER_HOST="unix://$SOCK" TESTCONTAINERS_RYUK_DISABLED=true TEST_INFRA=testcontainers
"$@"
