"""CLI: ``python -m unified_identity serve|migrate|rotate-keys|register-client|smtp-sink``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from unified_identity import domain, keys, store
from unified_identity.bootstrap import MIGRATIONS
from unified_identity.settings import Settings
from unified_shared.db import connect, migrate_database


async def _migrate(settings: Settings) -> list[str]:
    return await migrate_database(settings.database_url, MIGRATIONS)


async def _rotate(settings: Settings) -> None:
    await _migrate(settings)
    conn = await connect(settings.database_url)
    try:
        cipher = keys.KeyCipher(settings.key_encryption_key)
        await keys.seal_stored_keys(conn, cipher)
        await keys.ensure_active(conn, cipher)
        grace = timedelta(seconds=settings.key_publish_grace_s)
        new_kid, retired, dropped = await keys.rotate(conn, cipher, now=datetime.now(UTC), grace=grace)
    finally:
        await conn.close()
    print(f"active signing key: {new_kid}")
    if retired:
        print(f"retired key {retired}: still published for {settings.key_publish_grace_s} s (until its tokens expire)")
    for kid in dropped:
        print(f"dropped expired key {kid}")


async def _register_client(settings: Settings, args: argparse.Namespace) -> None:
    await _migrate(settings)
    secret = _client_secret(args) if args.confidential else None
    conn = await connect(settings.database_url)
    try:
        await store.upsert_client(
            conn,
            client_id=args.client_id,
            name=args.name or args.client_id,
            redirect_uris=args.redirect_uri,
            post_logout_redirect_uris=args.post_logout_redirect_uri or [],
            secret_hash=domain.secret_hash(secret) if secret else None,
        )
    finally:
        await conn.close()
    print(f"client {args.client_id} registered ({'confidential' if secret else 'public, PKCE only'})")
    if secret and args.secret_file:
        print(f"client_secret in {args.secret_file} (only its hash is stored here)")
    elif secret:
        print(f"client_secret: {secret}  (shown once; only its hash is stored)")


def _client_secret(args: argparse.Namespace) -> str:
    """A new secret, or with --secret-file the one in that file (written there, mode 0600, when missing):
    a platform start registers its web client again and again without the secret changing or being printed."""
    if not args.secret_file:
        return domain.new_secret()
    path = Path(args.secret_file)
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = domain.new_secret()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    return secret


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m unified_identity", description="unified-seller identity service")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP service (applies migrations on start)")
    sub.add_parser("migrate", help="apply the database migrations")
    sub.add_parser("rotate-keys", help="retire the signing key and make a new one")
    sub.add_parser(
        "new-key-encryption-key", help=f"print a new key for {keys.KEY_ENCRYPTION_ENV} (signing keys at rest)"
    )
    reg = sub.add_parser("register-client", help="register or update an OAuth client")
    reg.add_argument("--client-id", required=True)
    reg.add_argument("--name")
    reg.add_argument("--redirect-uri", action="append", required=True, help="exact redirect URI (repeatable)")
    reg.add_argument("--post-logout-redirect-uri", action="append")
    reg.add_argument("--confidential", action="store_true", help="issue a client secret")
    reg.add_argument("--secret-file", help="with --confidential: keep the secret in this file (reused if present)")
    sink = sub.add_parser("smtp-sink", help="run an SMTP server that stores every mail as a .eml file")
    sink.add_argument("--dir", default=None, help="folder for .eml files (default: SMTP_SINK_DIR)")
    sink.add_argument("--host", default="127.0.0.1")
    sink.add_argument("--port", type=int, default=None, help="default: SMTP_PORT (2525)")
    args = parser.parse_args(argv)

    settings = Settings()
    if args.command == "serve":
        from unified_identity.bootstrap import bootstrap
        from unified_shared.runtime import serve

        serve(bootstrap(settings), settings)
    elif args.command == "migrate":
        applied = asyncio.run(_migrate(settings))
        print(f"{len(applied)} migrations applied" + (f": {', '.join(applied)}" if applied else ""))
    elif args.command == "rotate-keys":
        asyncio.run(_rotate(settings))
    elif args.command == "new-key-encryption-key":
        print(keys.new_key_encryption_key())
    elif args.command == "register-client":
        asyncio.run(_register_client(settings, args))
    elif args.command == "smtp-sink":
        from unified_identity.mail import run_sink

        directory = args.dir or settings.smtp_sink_dir
        os.makedirs(directory, exist_ok=True)
        run_sink(directory, host=args.host, port=args.port or settings.smtp_port)
    else:  # pragma: no cover - argparse refuses unknown commands
        sys.exit(2)


if __name__ == "__main__":
    main()
