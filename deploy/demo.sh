#!/usr/bin/env bash
# make demo: start every service, drive the demo seller through the public APIs, print the report.
# Without --once the platform keeps running until Ctrl-C; either way the services stop when this exits.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if deploy/platform.sh running; then
  deploy/platform.sh wait  # a platform someone else started: use it and leave it running
else
  deploy/platform.sh up
  trap 'deploy/platform.sh down' EXIT
fi
.venv/bin/python -m unified_demo "$@"
