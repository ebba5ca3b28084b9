"""Ed25519 signing keys kept in the database, the published JWKS, and JWT signing (PyJWT).

One key is active; ``rotate`` retires it and makes a new one. A retired key stays in the JWKS for
``grace`` (the longest token lifetime plus leeway), so tokens it signed keep validating until they expire.

Private keys are encrypted at rest (Fernet: AES-128-CBC + HMAC-SHA256) with a key from the environment
(``IDENTITY_KEY_ENCRYPTION_KEY``, comma-separated to rotate it: the first encrypts, every one decrypts), so a
copy of the database or a backup cannot sign tokens. Keys stored in plaintext by an older version are
encrypted at start-up.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import jwt
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ALG = "EdDSA"
KEY_ENCRYPTION_ENV = "IDENTITY_KEY_ENCRYPTION_KEY"


class KeyEncryptionError(RuntimeError):
    """The key-encryption key is missing, malformed, or does not decrypt the stored keys."""


class KeyCipher:
    """Encrypts private keys at rest with one or more Fernet keys (the first encrypts, every one decrypts)."""

    def __init__(self, secret: str | None) -> None:
        if not secret or not secret.strip():
            raise KeyEncryptionError(
                f"{KEY_ENCRYPTION_ENV} is not set: identity keeps its signing keys encrypted with it "
                "(make one with `python -m unified_identity new-key-encryption-key`)"
            )
        try:
            self._fernet = MultiFernet([Fernet(part.strip().encode()) for part in secret.split(",") if part.strip()])
        except (ValueError, TypeError) as exc:
            raise KeyEncryptionError(f"{KEY_ENCRYPTION_ENV} is not a Fernet key (32 url-safe base64 bytes)") from exc

    def encrypt(self, pem: str) -> bytes:
        return self._fernet.encrypt(pem.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode()
        except InvalidToken:
            raise KeyEncryptionError(f"{KEY_ENCRYPTION_ENV} does not decrypt the stored signing keys") from None

    def rotate(self, token: bytes) -> bytes:
        """The same plaintext under the first key (after a change of key-encryption key)."""
        try:
            return self._fernet.rotate(bytes(token))
        except InvalidToken:
            raise KeyEncryptionError(f"{KEY_ENCRYPTION_ENV} does not decrypt the stored signing keys") from None


def new_key_encryption_key() -> str:
    return Fernet.generate_key().decode()


_KEY_LOCK = 0x1D3A77  # advisory lock: one process at a time creates or rotates keys


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey

    def sign(self, claims: dict[str, Any], *, typ: str = "JWT") -> str:
        return jwt.encode(claims, self.private_key, algorithm=ALG, headers={"kid": self.kid, "typ": typ})


def _public_jwk(private_key: Ed25519PrivateKey) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(private_key.public_key()))
    return {"kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"]}


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint of an OKP key: the key's name is derived from the key itself."""
    canonical = json.dumps({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def generate() -> tuple[str, str, dict[str, Any]]:
    """A new key: (kid, PKCS#8 PEM of the private key, public JWK)."""
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    jwk = _public_jwk(private_key)
    kid = thumbprint(jwk)
    jwk.update({"kid": kid, "use": "sig", "alg": ALG})
    return kid, pem, jwk


async def _insert(conn: asyncpg.Connection, cipher: KeyCipher) -> str:
    kid, pem, jwk = generate()
    await conn.execute(
        "INSERT INTO signing_keys (kid, alg, private_key_enc, public_jwk) VALUES ($1, $2, $3, $4::jsonb)",
        kid,
        ALG,
        cipher.encrypt(pem),
        jwk,
    )
    return kid


async def ensure_active(conn: asyncpg.Connection, cipher: KeyCipher) -> str:
    """The active key's kid, creating the first key if there is none (safe with several processes)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _KEY_LOCK)
        kid = await conn.fetchval("SELECT kid FROM signing_keys WHERE retired_at IS NULL")
        if kid is not None:
            return str(kid)
        return await _insert(conn, cipher)


async def seal_stored_keys(conn: asyncpg.Connection, cipher: KeyCipher) -> int:
    """Encrypt keys an older version stored in plaintext and re-encrypt the others under the first
    key-encryption key; fails (KeyEncryptionError) if the configured key cannot decrypt them. Returns how many
    plaintext keys were encrypted."""
    sealed = 0
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _KEY_LOCK)
        for row in await conn.fetch("SELECT kid, private_pem, private_key_enc FROM signing_keys FOR UPDATE"):
            if row["private_key_enc"] is None:
                encrypted = cipher.encrypt(row["private_pem"])
                sealed += 1
            else:
                encrypted = cipher.rotate(row["private_key_enc"])
            await conn.execute(
                "UPDATE signing_keys SET private_key_enc = $2, private_pem = NULL WHERE kid = $1", row["kid"], encrypted
            )
    return sealed


async def rotate(
    conn: asyncpg.Connection, cipher: KeyCipher, *, now: datetime, grace: timedelta
) -> tuple[str, str | None, list[str]]:
    """Retire the active key, create a new one, drop keys whose tokens have all expired.

    Returns (new kid, retired kid or None, dropped kids).
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _KEY_LOCK)
        retired = await conn.fetchval(
            "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL RETURNING kid", now
        )
        new_kid = await _insert(conn, cipher)
        dropped = await conn.fetch(
            "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1 RETURNING kid", now - grace
        )
    return new_kid, retired, [r["kid"] for r in dropped]


async def active(conn: asyncpg.Connection, cipher: KeyCipher) -> SigningKey:
    """The key new tokens are signed with (read each time, so a rotation by another process applies at once)."""
    sql = "SELECT kid, private_pem, private_key_enc FROM signing_keys WHERE "
    row = await conn.fetchrow(sql + "retired_at IS NULL")
    if row is None:
        kid = await ensure_active(conn, cipher)
        row = await conn.fetchrow(sql + "kid = $1", kid)
        assert row is not None
    # A plaintext row exists only between an upgrade and the start that seals it.
    pem = cipher.decrypt(row["private_key_enc"]) if row["private_key_enc"] is not None else row["private_pem"]
    private_key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(private_key, Ed25519PrivateKey)
    return SigningKey(row["kid"], private_key)


async def jwks(conn: asyncpg.Connection, *, now: datetime, grace: timedelta) -> dict[str, Any]:
    """The published key set: the active key and every retired key whose tokens may still be valid."""
    rows = await conn.fetch(
        """SELECT public_jwk FROM signing_keys
           WHERE retired_at IS NULL OR retired_at > $1
           ORDER BY retired_at IS NOT NULL, created_at DESC""",
        now - grace,
    )
    return {"keys": [dict(r["public_jwk"]) for r in rows]}
