"""`make deploy-local` registers the web app's confidential OIDC client at identity before the play (the web
app refuses to start without its secret): identity's own register-client against identity's real database,
the secret handed to the web app's Secret, the same secret on every later ``up``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy" / "k8s"))
sys.path.insert(0, str(ROOT / "deploy"))

import local  # noqa: E402
from render import LocalOptions, render_local  # noqa: E402


async def _client(dsn: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchrow(
            "SELECT redirect_uris, post_logout_redirect_uris, secret_hash FROM oauth_clients WHERE client_id = $1",
            local.WEB_CLIENT_ID,
        )
    finally:
        await conn.close()


def test_up_registers_the_web_client_and_hands_its_secret_to_the_web_app(fresh_db: str, tmp_path: Path) -> None:
    docs = render_local(LocalOptions(base_port=18300, name_suffix="-t"))
    secrets = {d["metadata"]["name"]: d["stringData"] for d in docs if d["kind"] == "Secret"}
    assert "OIDC_CLIENT_SECRET" not in secrets["web-t-secrets"]
    secrets["identity-t-secrets"]["DATABASE_URL"] = fresh_db  # identity's database (empty: it migrates it)
    secret_file = tmp_path / "web-client-secret"

    assert local.register_web_client(docs, secret_file)
    handed = secrets["web-t-secrets"]["OIDC_CLIENT_SECRET"]
    assert len(handed) >= 32 and handed == secret_file.read_text().strip()
    assert secret_file.stat().st_mode & 0o777 == 0o600
    row = asyncio.run(_client(fresh_db))
    assert row is not None and row["secret_hash"] is not None
    assert row["redirect_uris"] == ["http://127.0.0.1:18350/auth/callback"]
    assert row["post_logout_redirect_uris"] == ["http://127.0.0.1:18350/signed-out"]
    assert handed not in str(dict(row))  # only its hash is stored

    again = render_local(LocalOptions(base_port=18300, name_suffix="-t"))
    for d in again:
        if d["metadata"]["name"] == "identity-t-secrets":
            d["stringData"]["DATABASE_URL"] = fresh_db
    assert local.register_web_client(again, secret_file)
    web = next(d for d in again if d["metadata"]["name"] == "web-t-secrets")
    assert web["stringData"]["OIDC_CLIENT_SECRET"] == handed


def test_a_manifest_without_the_web_app_registers_nothing(tmp_path: Path) -> None:
    docs = [d for d in render_local(LocalOptions(name_suffix="-t")) if not d["metadata"]["name"].startswith("web")]
    assert not local.register_web_client(docs, tmp_path / "web-client-secret")
    assert not (tmp_path / "web-client-secret").exists()
