#!/usr/bin/env bash
# Installs what building and running the images needs, from Debian's packages, when missing: podman, runc
# (crun cannot set rlimits on these machines), mmdebstrap. Waits for and retries while another apt/dpkg run
# holds the lock, so CI on a fresh machine does exactly what a developer's machine did.
set -euo pipefail
need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
# The pause process of every pod `podman kube play` starts.
command -v catatonit >/dev/null || [ -x /usr/libexec/podman/catatonit ] || need+=(catatonit)
[ ${#need[@]} -eq 0 ] && exit 0
echo "[images] installing ${need[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
for attempt in $(seq 1 30); do
  if apt-get -o DPkg::Lock::Timeout=120 update -qq \
    && apt-get -o DPkg::Lock::Timeout=120 install -y -qq "${need[@]}" uidmap >/dev/null; then
    exit 0
  fi
  echo "[images] apt-get failed (lock held by another run?), retry $attempt of 30" >&2
  sleep 5
done
echo "[images] ERROR: could not install ${need[*]}" >&2
exit 1
