#!/usr/bin/env bash
# Every podman call of the project goes through here: the runc runtime (crun fails on these machines), no
# default ulimits (the API path cannot set them), and image storage in the state folder, so that parallel
# checkouts and CI never share or clobber each other's images.
#   deploy/images/podman.sh <podman arguments>
set -euo pipefail
STATE="${US_STATE_DIR:-/var/tmp/unified-seller}"
C="$STATE/containers"
mkdir -p "$C/storage" "$C/run"
if [ ! -f "$C/containers.conf" ] || [ ! -f "$C/storage.conf" ]; then
  printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' >"$C/containers.conf"
  printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' "$C/storage" "$C/run" >"$C/storage.conf"
fi
export CONTAINERS_CONF="$C/containers.conf" CONTAINERS_STORAGE_CONF="$C/storage.conf"
exec podman --runtime runc "$@"
