"""`make deploy-local` / `make deploy-down`: the local manifests run by ``podman kube play``.

The containers use the host network: they reach the project's Kafka and PostgreSQL on 127.0.0.1 and serve on
the host's ports (DEPLOY_BASE_PORT + the service's offset, default the usual 8001..8040), exactly as the
honcho platform does, so the two cannot run at once on the same ports. The Secrets of the manifest become
podman secrets (stored in the state folder's container storage); the operator token is generated once into
``$US_STATE_DIR/deploy/operator-token``.

Run: ``python deploy/k8s/local.py up|down|status``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render import HEADER, LocalOptions, dump, render_local

ROOT = Path(__file__).resolve().parents[2]
PODMAN = str(ROOT / "deploy" / "images" / "podman.sh")
UID = 10001


def state() -> Path:
    return Path(os.environ.get("US_STATE_DIR", "/var/tmp/unified-seller")) / "deploy"


def podman(*args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PODMAN, *args], check=check, text=True, input=stdin, capture_output=True)


def operator_token() -> str:
    """Generated on first use, kept in the state folder (never in the repository)."""
    path = state() / "operator-token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def ports(docs: list[dict[str, Any]]) -> list[int]:
    """The HTTP port of every service of a rendered local manifest (the SMTP sink has none)."""
    return [int(d["data"]["HTTP_PORT"]) for d in docs if d["kind"] == "ConfigMap"]


def up(opts: LocalOptions, manifest: Path) -> list[dict[str, Any]]:
    """Render, turn the Secrets into podman secrets, play. Returns the documents played."""
    docs = render_local(opts)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    Path(opts.mail_dir).mkdir(parents=True, exist_ok=True)
    os.chown(opts.mail_dir, UID, UID)  # the sink runs as the images' non-root user
    for doc in docs:
        if doc["kind"] == "Secret":
            # podman kube play (4.3) reads a secret as JSON of base64 values, not as a Secret manifest.
            data = {k: base64.b64encode(v.encode()).decode() for k, v in doc["stringData"].items()}
            name = doc["metadata"]["name"]
            podman("secret", "rm", name, check=False)
            podman("secret", "create", name, "-", stdin=json.dumps(data))
    manifest.write_text(HEADER + dump([d for d in docs if d["kind"] != "Secret"]))
    done = podman("kube", "play", str(manifest), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"podman kube play failed: {done.stderr.strip()}")
    return docs


def down(manifest: Path) -> None:
    if not manifest.exists():
        return
    podman("kube", "down", str(manifest), check=False)
    for doc in yaml.safe_load_all(manifest.read_text()):
        for source in (
            doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])[0].get("envFrom", [])
        ):
            if "secretRef" in source:
                podman("secret", "rm", source["secretRef"]["name"], check=False)


def wait_ready(urls: list[str], timeout_s: float = 240.0) -> None:
    """Every service answers /health/ready with 200 (its database, relay and consumer are up)."""
    deadline = time.monotonic() + timeout_s
    for url in urls:
        while True:
            try:
                if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url}/health/ready did not answer 200 in time; see `podman logs`")
            time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the local manifests with podman kube play")
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args()
    manifest = state() / "local.yaml"
    if args.command == "down":
        down(manifest)
        print("[deploy] local containers removed")
        return
    if args.command == "status":
        print(podman("pod", "ps", check=False).stdout)
        return
    opts = LocalOptions.from_env()
    opts.operator_token = operator_token()
    down(manifest)
    docs = up(opts, manifest)
    urls = [f"http://127.0.0.1:{p}" for p in ports(docs)]
    wait_ready(urls)
    print("[deploy] every container is ready: " + " ".join(urls))
    print(f"[deploy] operator token in {state() / 'operator-token'}; logs: deploy/images/podman.sh logs <pod>-0-<c>")


if __name__ == "__main__":
    main()
