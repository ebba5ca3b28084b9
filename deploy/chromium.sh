#!/usr/bin/env bash
# The real browser of the web app's tests: Debian's chromium, installed with apt-get when missing (Playwright's
# own browser download is not used). Waits for the dpkg lock while another apt-get holds it.
#   deploy/chromium.sh            install if missing, print its path
set -euo pipefail
say() { printf '[chromium] %s\n' "$*"; }
for candidate in "${CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; exit 0; fi
done
command -v apt-get >/dev/null || { say "no chromium and no apt-get: install chromium and set CHROMIUM" >&2; exit 1; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
deadline=$((SECONDS + ${APT_LOCK_TIMEOUT:-900}))
updated=""
until DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q -o DPkg::Lock::Timeout=60 chromium >&2; do
  [ $SECONDS -lt $deadline ] || { say "apt-get install chromium kept failing" >&2; exit 1; }
  if [ -z "$updated" ]; then $SUDO apt-get update -q -o DPkg::Lock::Timeout=60 >&2 || true; updated=1; fi
  say "apt-get busy or failed; trying again" >&2
  sleep 5
done
say "installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)" >&2
echo /usr/bin/chromium
