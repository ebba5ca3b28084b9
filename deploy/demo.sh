#!/usr/bin/env bash
# make demo: start every service, drive the demo seller through the public APIs, print the report.
# Without --once the platform keeps running until Ctrl-C; either way the services stop when this exits.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
deploy/platform.sh up
trap 'deploy/platform.sh down' EXIT
.venv/bin/python -m unified_demo "$@"
