"""Signing keys encrypted at rest (DESIGN 11): the database holds no usable private key, keys an older
version stored in plaintext are encrypted at start-up, and the service refuses to start without the
key-encryption key or with one that does not open the stored keys."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from unified_identity import keys
from unified_identity.app import create_service_app


async def stored_keys(service) -> list[dict]:
    conn = await service.db()
    try:
        rows = await conn.fetch("SELECT kid, private_pem, private_key_enc, retired_at FROM signing_keys")
    finally:
        await conn.close()
    return [dict(r) for r in rows]


async def test_the_database_holds_only_encrypted_private_keys(service, http) -> None:
    jwks = (await http.get(f"{service.base}/.well-known/jwks.json")).json()
    (row,) = await stored_keys(service)
    assert row["private_pem"] is None
    assert b"PRIVATE KEY" not in bytes(row["private_key_enc"])
    pem = keys.KeyCipher(service.settings.key_encryption_key).decrypt(row["private_key_enc"])
    private_key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(private_key, Ed25519PrivateKey)
    published = next(k for k in jwks["keys"] if k["kid"] == row["kid"])
    assert keys.thumbprint(published) == row["kid"] == keys.thumbprint(keys._public_jwk(private_key))
    with pytest.raises(keys.KeyEncryptionError):
        keys.KeyCipher(keys.new_key_encryption_key()).decrypt(row["private_key_enc"])


async def test_plaintext_keys_of_an_older_version_are_encrypted_at_start(service, http, other_instance) -> None:
    """A key stored as plaintext PEM (as before encryption) is sealed by the next start and still signs."""
    kid, pem, jwk = keys.generate()
    conn = await service.db()
    try:
        async with conn.transaction():
            await conn.execute("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL", datetime.now(UTC))
            await conn.execute(
                "INSERT INTO signing_keys (kid, alg, private_pem, public_jwk) VALUES ($1, $2, $3, $4::jsonb)",
                kid,
                keys.ALG,
                pem,
                jwk,
            )
    finally:
        await conn.close()
    async with other_instance():
        rows = await stored_keys(service)
    assert rows and all(r["private_pem"] is None and r["private_key_enc"] is not None for r in rows)
    sealed = next(r for r in rows if r["kid"] == kid)
    assert keys.KeyCipher(service.settings.key_encryption_key).decrypt(sealed["private_key_enc"]) == pem
    # The sealed key is still the active one: a token signed now carries its kid.
    token = keys.SigningKey(kid, serialization.load_pem_private_key(pem.encode(), password=None)).sign({"x": 1})
    assert jwt.get_unverified_header(token)["kid"] == kid


async def test_a_rotated_key_encryption_key_reencrypts_and_the_old_one_can_go(service, other_instance) -> None:
    old = service.settings.key_encryption_key
    new = keys.new_key_encryption_key()
    async with other_instance(identity_key_encryption_key=f"{new},{old}"):
        pass
    (row,) = await stored_keys(service)
    keys.KeyCipher(new).decrypt(row["private_key_enc"])
    with pytest.raises(keys.KeyEncryptionError):
        keys.KeyCipher(old).decrypt(row["private_key_enc"])


@pytest.mark.parametrize("secret", [None, "not-a-fernet-key", "wrong"])
async def test_the_service_refuses_to_start_without_a_key_that_opens_the_stored_ones(service, secret) -> None:
    if secret == "wrong":
        secret = keys.new_key_encryption_key()  # well-formed, but not the key the stored ones were sealed with
    settings = service.settings.model_copy(update={"identity_key_encryption_key": secret})
    app = create_service_app(settings)
    with pytest.raises(keys.KeyEncryptionError):
        async with app.router.lifespan_context(app):
            pass
    async with httpx.AsyncClient() as http:  # the running instance is untouched
        assert (await http.get(f"{service.base}/.well-known/jwks.json")).status_code == 200
