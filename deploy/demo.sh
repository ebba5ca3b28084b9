#!/usr/bin/env bash
# make demo: start every service, drive the demo seller through the public APIs, print the report.
# Without --once the platform keeps running until Ctrl-C; either way the services stop when this exits.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
stop_platform() {
  trap - EXIT INT TERM
  trap '' PIPE  # the terminal or a pipe may be gone after Ctrl-C: stopping must still happen
  deploy/platform.sh down || true
}
if deploy/platform.sh running; then
  deploy/platform.sh wait  # a platform someone else started: use it and leave it running
else
  deploy/platform.sh up
  trap stop_platform EXIT
  trap 'stop_platform; exit 130' INT TERM
fi
.venv/bin/python -m unified_demo "$@"
