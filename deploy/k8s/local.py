"""`make deploy-local` / `make deploy-down`: the local manifests run by ``podman kube play``.

The containers use the host network: they reach the project's Kafka and PostgreSQL on 127.0.0.1 and serve on
the host's ports (DEPLOY_BASE_PORT + the service's offset, default the usual 8001..8040), exactly as the
honcho platform does, so the two cannot run at once on the same ports. The Secrets of the manifest become
podman secrets (stored in the state folder's container storage); the operator token is generated once into
``$US_STATE_DIR/deploy/operator-token``. The web app's confidential OpenID Connect client is registered at
identity before the play (``register_web_client``), its secret kept beside the manifest.

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

from unified_shared.local_secrets import use_local_admin_login

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


WEB_CLIENT_ID = "unified-seller-web"  # the web app's default OIDC_CLIENT_ID


def _doc(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    return next((d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name), None)


def register_web_client(docs: list[dict[str, Any]], secret_file: Path) -> bool:
    """Register (or update) the web app's confidential OIDC client at identity, as deploy/web.sh does for
    `make demo`, and put its secret in the web app's Secret; False when the manifest has no web app.

    identity's own ``register-client`` writes the client to identity's database (after applying identity's
    migrations, so it runs before identity's container starts; the web app signs in only later). The secret
    is generated once into ``secret_file`` (mode 0600) and reused, so a second ``up`` changes nothing."""
    web = next((d for d in docs if d["kind"] == "ConfigMap" and "WEB_PUBLIC_URL" in d["data"]), None)
    if web is None:
        return False
    instance = web["metadata"]["name"].removesuffix("-config")
    suffix = instance.removeprefix("web")  # the name suffix of a test run ("" for make deploy-local)
    identity = _doc(docs, "Secret", f"identity{suffix}-secrets")
    web_secret = _doc(docs, "Secret", f"{instance}-secrets")
    if identity is None or web_secret is None:
        raise RuntimeError("the local manifest has the web app without identity")
    public = web["data"]["WEB_PUBLIC_URL"].rstrip("/")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "unified_identity", "register-client", "--client-id", WEB_CLIENT_ID),
            *("--name", "unified-seller web", "--confidential", "--secret-file", str(secret_file)),
            *("--redirect-uri", f"{public}/auth/callback", "--post-logout-redirect-uri", f"{public}/signed-out"),
        ],
        env={**os.environ, "DATABASE_URL": identity["stringData"]["DATABASE_URL"]},
        text=True,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"registering the web app's OIDC client at identity failed: {done.stderr.strip()}")
    web_secret["stringData"]["OIDC_CLIENT_ID"] = WEB_CLIENT_ID
    web_secret["stringData"]["OIDC_CLIENT_SECRET"] = secret_file.read_text().strip()
    return True


def up(opts: LocalOptions, manifest: Path) -> list[dict[str, Any]]:
    """Render, register the web app's client at identity, turn the Secrets into podman secrets, play.
    Returns the documents played."""
    docs = render_local(opts)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    register_web_client(docs, manifest.parent / "web-client-secret")
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
    # The state folder's broker wants SASL/SCRAM over TLS: unless the environment says how to reach Kafka, the
    # containers use the state folder's settings (each logs in as its own service principal, see render.py).
    use_local_admin_login()
    opts = LocalOptions.from_env()
    opts.operator_token = operator_token()
    down(manifest)
    docs = up(opts, manifest)
    urls = [f"http://127.0.0.1:{p}" for p in ports(docs)]
    wait_ready(urls)
    print("[deploy] every container is ready: " + " ".join(urls))
    print(f"[deploy] operator token in {state() / 'operator-token'}; logs: deploy/images/podman.sh logs <pod>-0-<c>")
    web = next((d["data"]["WEB_PUBLIC_URL"] for d in docs if "WEB_PUBLIC_URL" in d.get("data", {})), None)
    if web:
        print(f"[deploy] web app: {web} (sign in with an account registered at identity)")


if __name__ == "__main__":
    main()
