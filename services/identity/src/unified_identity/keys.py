"""Ed25519 signing keys kept in the database, the published JWKS, and JWT signing (PyJWT).

One key is active; ``rotate`` retires it and makes a new one. A retired key stays in the JWKS for
``grace`` (the longest token lifetime plus leeway), so tokens it signed keep validating until they expire.
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
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ALG = "EdDSA"
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


async def _insert(conn: asyncpg.Connection) -> str:
    kid, pem, jwk = generate()
    await conn.execute(
        "INSERT INTO signing_keys (kid, alg, private_pem, public_jwk) VALUES ($1, $2, $3, $4::jsonb)",
        kid,
        ALG,
        pem,
        jwk,
    )
    return kid


async def ensure_active(conn: asyncpg.Connection) -> str:
    """The active key's kid, creating the first key if there is none (safe with several processes)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _KEY_LOCK)
        kid = await conn.fetchval("SELECT kid FROM signing_keys WHERE retired_at IS NULL")
        if kid is not None:
            return str(kid)
        return await _insert(conn)


async def rotate(conn: asyncpg.Connection, *, now: datetime, grace: timedelta) -> tuple[str, str | None, list[str]]:
    """Retire the active key, create a new one, drop keys whose tokens have all expired.

    Returns (new kid, retired kid or None, dropped kids).
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _KEY_LOCK)
        retired = await conn.fetchval(
            "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL RETURNING kid", now
        )
        new_kid = await _insert(conn)
        dropped = await conn.fetch(
            "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1 RETURNING kid", now - grace
        )
    return new_kid, retired, [r["kid"] for r in dropped]


async def active(conn: asyncpg.Connection) -> SigningKey:
    """The key new tokens are signed with (read each time, so a rotation by another process applies at once)."""
    row = await conn.fetchrow("SELECT kid, private_pem FROM signing_keys WHERE retired_at IS NULL")
    if row is None:
        kid = await ensure_active(conn)
        row = await conn.fetchrow("SELECT kid, private_pem FROM signing_keys WHERE kid = $1", kid)
        assert row is not None
    private_key = serialization.load_pem_private_key(row["private_pem"].encode(), password=None)
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
