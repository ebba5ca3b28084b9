#!/usr/bin/env bash
# Starts, stops and checks every unified-seller service under honcho (one process each, see Procfile).
#   deploy/platform.sh up|down|status|wait|running (exit 0 if honcho runs)
# Logs: $US_STATE_DIR/logs/platform.log (one line per service output, prefixed with its name).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
STATE="${US_STATE_DIR:-/var/tmp/unified-seller}"
LOGS="$STATE/logs"
PIDFILE="$STATE/platform.pid"
VENV="${VENV:-$ROOT/.venv}"
READY_URLS="${READY_URLS:-http://127.0.0.1:8001 http://127.0.0.1:8002 http://127.0.0.1:8011 http://127.0.0.1:8012 http://127.0.0.1:8013 http://127.0.0.1:8021 http://127.0.0.1:8022 http://127.0.0.1:8023 http://127.0.0.1:8030 http://127.0.0.1:8040 http://127.0.0.1:8050 http://127.0.0.1:8060}"

say() { printf '[platform] %s\n' "$*" || true; }
die() { printf '[platform] ERROR: %s\n' "$*" >&2; exit 1; }
running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

ready() { curl -fs -o /dev/null --max-time 2 "$1/health/ready"; }

cmd_wait() {
  local deadline=$((SECONDS + ${READY_TIMEOUT:-180}))
  for url in $READY_URLS; do
    until ready "$url"; do
      running || die "the platform stopped while starting: see $LOGS/platform.log"
      [ $SECONDS -lt $deadline ] || die "$url/health/ready did not answer in time: see $LOGS/platform.log"
      sleep 1
    done
  done
  say "every service is ready"
}

cmd_up() {
  mkdir -p "$LOGS"
  if running; then
    say "already running (honcho pid $(cat "$PIDFILE"))"
  else
    for url in $READY_URLS; do
      local port="${url##*:}"
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && die "port $port is held by another process"
    done
    say "starting every service under honcho; log: $LOGS/platform.log"
    export PG="${PG:-postgresql://postgres@127.0.0.1:${PG_PORT:-55432}}"
    export SMTP_SINK_DIR="${SMTP_SINK_DIR:-$STATE/mail}"  # where the demo reads the invitation mail
    cd "$ROOT"
    # setsid: honcho leads its own session, so `down` can stop every process it started at once.
    PATH="$VENV/bin:$PATH" setsid nohup "$VENV/bin/honcho" -f "$HERE/Procfile" -e "$HERE/platform.env" -d "$ROOT" \
      start >>"$LOGS/platform.log" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
  fi
  cmd_wait
}

cmd_down() {
  if ! running; then say "not running"; rm -f "$PIDFILE"; return; fi
  local pid; pid=$(cat "$PIDFILE")
  say "stopping (honcho pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
}

cmd_status() {
  if running; then say "honcho pid $(cat "$PIDFILE")"; else say "not running"; fi
  for url in $READY_URLS; do
    if ready "$url"; then say "$url ready"; else say "$url not ready"; fi
  done
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  wait) cmd_wait ;;
  running) running ;;
  *) echo "usage: $0 up|down|status|wait|running" >&2; exit 2 ;;
esac
