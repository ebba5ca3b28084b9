"""The OpenID Connect provider against the running service: a real OAuth 2.0 client (authlib) signs in with
code + PKCE, refreshes and calls userinfo; forged, expired and replayed credentials are refused."""

from __future__ import annotations

import base64
import json
import os
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from unified_identity import keys
from unified_shared.auth import validator_from_settings
from unified_shared.problems import Problem
from unified_shared.testing_services import run_module

STRONG_PASSWORD = "correct horse battery staple 42"
CLI = "unified-seller-cli"


def code_of(response: httpx.Response) -> str:
    return parse_qs(urlsplit(str(response.url)).query)["code"][0]


async def token_request(http: httpx.AsyncClient, base: str, **form: str) -> httpx.Response:
    return await http.post(f"{base}/token", data={"client_id": CLI, **form})


async def exchange_code(
    http: httpx.AsyncClient, base: str, final: httpx.Response, verifier: str, redirect_uri: str
) -> httpx.Response:
    """The token request for the code the sign-in's last redirect (``final``) carried."""
    form = {"code": code_of(final), "redirect_uri": redirect_uri, "code_verifier": verifier}
    return await token_request(http, base, grant_type="authorization_code", **form)


async def active_private_key(service) -> tuple[str, Ed25519PrivateKey]:
    conn = await service.db()
    try:
        row = await conn.fetchrow("SELECT kid, private_key_enc FROM signing_keys WHERE retired_at IS NULL")
    finally:
        await conn.close()
    pem = keys.KeyCipher(service.settings.key_encryption_key).decrypt(row["private_key_enc"])
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return row["kid"], key


async def test_full_sign_in_with_a_real_oauth_client(service, http, sign_in) -> None:
    account_id, user_id, email_addr = await service.register(http)
    client = sign_in.client()
    final, verifier, state, nonce = await sign_in.authorize(client, email_addr, STRONG_PASSWORD)
    # The browser followed the 302 to the client's real callback endpoint, carrying code and state.
    assert final.status_code == 200 and str(final.url).startswith(service.callback.url)
    assert service.callback.received[-1]["state"] == state
    assert service.callback.received[-1]["iss"] == service.settings.issuer
    token = await client.fetch_token(
        f"{service.base}/token", authorization_response=str(final.url), code_verifier=verifier, state=state
    )

    jwks = (await http.get(f"{service.base}/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(token["access_token"])
    assert header["alg"] == "EdDSA" and header["kid"] in {k["kid"] for k in jwks["keys"]}
    key = jwt.PyJWK.from_dict(next(k for k in jwks["keys"] if k["kid"] == header["kid"]))
    claims = jwt.decode(
        token["access_token"], key.key, algorithms=["EdDSA"], audience="unified-seller", issuer=service.settings.issuer
    )
    assert claims["sub"] == user_id and claims["account_id"] == account_id
    assert claims["role"] == "owner" and claims["marketplaces"] == "*"
    assert sorted(claims["permissions"]) == ["billing", "listings", "messages", "orders", "reports"]
    assert 0 < claims["exp"] - claims["iat"] <= 600 and claims["jti"]
    assert token["token_type"].lower() == "bearer" and token["expires_in"] <= 600

    id_claims = jwt.decode(
        token["id_token"], key.key, algorithms=["EdDSA"], audience=CLI, issuer=service.settings.issuer
    )
    assert id_claims["nonce"] == nonce and id_claims["sub"] == user_id and id_claims["email"] == email_addr

    # Other services validate the same token offline through the shared validator and the served JWKS.
    validator = validator_from_settings(service.settings.issuer, "unified-seller", None)
    principal = await validator.validate(token["access_token"])
    assert str(principal.account_id) == account_id and principal.has("billing")

    first_refresh = token["refresh_token"]
    refreshed = await client.refresh_token(f"{service.base}/token")
    assert refreshed["refresh_token"] != first_refresh
    assert refreshed["access_token"] != token["access_token"]

    info = await client.get(f"{service.base}/userinfo")
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == user_id and info.json()["email"] == email_addr
    assert info.json()["account_id"] == account_id and info.json()["role"] == "owner"
    await client.aclose()


async def test_forged_or_misdirected_access_tokens_are_rejected(service, http, sign_in) -> None:
    _, _, _, token = await sign_in.new_owner(http)
    good = token["access_token"]
    claims = jwt.decode(good, options={"verify_signature": False})
    kid, private_key = await active_private_key(service)
    now = int(time.time())

    head, payload, signature = good.split(".")
    sig = bytearray(base64.urlsafe_b64decode(signature + "=="))
    sig[0] ^= 0x01
    tampered_sig = f"{head}.{payload}.{base64.urlsafe_b64encode(bytes(sig)).rstrip(b'=').decode()}"
    forged_claims = base64.urlsafe_b64encode(
        json.dumps({**claims, "role": "owner", "account_id": str(uuid.uuid4())}).encode()
    )
    tampered_payload = f"{head}.{forged_claims.rstrip(b'=').decode()}.{signature}"
    none_header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": kid, "typ": "JWT"}).encode()).rstrip(b"=")
    alg_none = f"{none_header.decode()}.{payload}."
    expired = jwt.encode(
        {**claims, "iat": now - 1200, "nbf": now - 1200, "exp": now - 600},
        private_key,
        algorithm="EdDSA",
        headers={"kid": kid},
    )
    wrong_audience = jwt.encode({**claims, "aud": "someone-else"}, private_key, algorithm="EdDSA", headers={"kid": kid})
    unknown_kid = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "not-published"})

    assert (await http.get(f"{service.base}/userinfo", headers={"Authorization": f"Bearer {good}"})).status_code == 200
    validator = validator_from_settings(service.settings.issuer, "unified-seller", None)
    cases = {
        "tampered signature": tampered_sig,
        "tampered payload": tampered_payload,
        "alg none": alg_none,
        "expired": expired,
        "wrong audience": wrong_audience,
        "unknown kid": unknown_kid,
    }
    for name, bad in cases.items():
        r = await http.get(f"{service.base}/userinfo", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401, (name, r.text)
        assert r.headers["content-type"].startswith("application/problem+json"), name
        with pytest.raises(Problem) as exc:
            await validator.validate(bad)
        assert exc.value.status == 401, name


async def test_a_code_used_twice_is_refused_and_revokes_its_tokens(service, http, sign_in) -> None:
    _, _, email_addr = await service.register(http)
    client = sign_in.client()
    final, verifier, _, _ = await sign_in.authorize(client, email_addr, STRONG_PASSWORD)
    await client.aclose()
    code = code_of(final)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": service.callback.url,
        "code_verifier": verifier,
    }
    first = await token_request(http, service.base, **form)
    assert first.status_code == 200, first.text
    second = await token_request(http, service.base, **form)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    # RFC 6749 4.1.2: what the code was exchanged for is revoked too.
    refresh = await token_request(
        http, service.base, grant_type="refresh_token", refresh_token=first.json()["refresh_token"]
    )
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


async def test_a_wrong_pkce_verifier_is_refused_and_burns_the_code(service, http, sign_in) -> None:
    _, _, email_addr = await service.register(http)
    client = sign_in.client()
    final, verifier, state, _ = await sign_in.authorize(client, email_addr, STRONG_PASSWORD)
    from authlib.integrations.base_client.errors import OAuthError as ClientOAuthError

    wrong = verifier[:-1] + ("A" if verifier[-1] != "A" else "B")
    with pytest.raises(ClientOAuthError) as exc:
        await client.fetch_token(
            f"{service.base}/token", authorization_response=str(final.url), code_verifier=wrong, state=state
        )
    assert exc.value.error == "invalid_grant"
    await client.aclose()
    retry = await exchange_code(http, service.base, final, verifier, service.callback.url)
    assert retry.status_code == 400 and retry.json()["error"] == "invalid_grant"


async def test_a_redirect_uri_differing_by_one_character_is_refused(service, http, sign_in) -> None:
    _, _, email_addr = await service.register(http)
    almost = service.callback.url[:-1] + "X"  # .../callbacX
    params = {
        "response_type": "code",
        "client_id": CLI,
        "redirect_uri": almost,
        "scope": "openid",
        "state": "s1",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }
    r = await http.get(f"{service.base}/authorize", params=params)
    assert r.status_code == 400 and "location" not in r.headers  # never redirect to an unregistered URI
    r = await http.post(f"{service.base}/authorize", data={**params, "email": email_addr, "password": STRONG_PASSWORD})
    assert r.status_code == 400 and "location" not in r.headers
    assert service.callback.received == []

    # At the token endpoint too: the redirect_uri must be the one of the authorization request.
    client = sign_in.client()
    final, verifier, _, _ = await sign_in.authorize(client, email_addr, STRONG_PASSWORD)
    await client.aclose()
    r = await exchange_code(http, service.base, final, verifier, almost)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_authorize_errors_go_back_to_the_registered_redirect_uri(service, http) -> None:
    base_params = {
        "response_type": "code",
        "client_id": CLI,
        "redirect_uri": service.callback.url,
        "state": "st-42",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }
    for change, error in (
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
    ):
        r = await http.get(f"{service.base}/authorize", params={**base_params, **change})
        assert r.status_code == 302, r.text
        query = parse_qs(urlsplit(r.headers["location"]).query)
        assert r.headers["location"].startswith(service.callback.url)
        assert query["error"] == [error] and query["state"] == ["st-42"]
    r = await http.get(f"{service.base}/authorize", params={**base_params, "client_id": "nobody"})
    assert r.status_code == 400 and "location" not in r.headers


async def test_reuse_of_a_rotated_refresh_token_revokes_the_family(service, http, sign_in) -> None:
    _, _, _, token = await sign_in.new_owner(http)
    r1 = token["refresh_token"]
    step = await token_request(http, service.base, grant_type="refresh_token", refresh_token=r1)
    assert step.status_code == 200, step.text
    r2, access2 = step.json()["refresh_token"], step.json()["access_token"]
    assert r2 != r1
    ok = await http.get(f"{service.base}/userinfo", headers={"Authorization": f"Bearer {access2}"})
    assert ok.status_code == 200

    reuse = await token_request(http, service.base, grant_type="refresh_token", refresh_token=r1)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    # The whole family is gone: the newest refresh token no longer works, and its session has ended.
    after = await token_request(http, service.base, grant_type="refresh_token", refresh_token=r2)
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"
    ended = await http.get(f"{service.base}/userinfo", headers={"Authorization": f"Bearer {access2}"})
    assert ended.status_code == 401


async def authorize_form(service, http: httpx.AsyncClient, email_addr: str, password: str) -> dict[str, str]:
    """The sign-in form as a browser gets it (with its CSRF token; the cookie stays in ``http``), filled in."""
    page, fields = await service.authorize_get(http, state="throttle")
    assert page.status_code == 200, page.text
    return {**fields, "email": email_addr, "password": password}


async def test_sixth_wrong_password_is_throttled_across_processes(service, http, other_instance) -> None:
    """Two service instances share the database: five failures on one make the sixth, on the other, a 429."""
    _, _, email_addr = await service.register(http)
    wrong_form = await authorize_form(service, http, email_addr, "wrong password 123")
    for _ in range(5):
        r = await http.post(f"{service.base}/authorize", data=wrong_form)
        assert r.status_code == 401, r.text
    # The form (and its CSRF token) came from the first instance; the second accepts it (shared key).
    async with other_instance() as other_base:
        r = await http.post(f"{other_base}/authorize", data=wrong_form)
        assert r.status_code == 429, r.text
        assert 0 < int(r.headers["retry-after"]) <= 900
        # Until the window passes, even the right password gets 429.
        r = await http.post(f"{other_base}/authorize", data={**wrong_form, "password": STRONG_PASSWORD})
        assert r.status_code == 429 and "location" not in r.headers


async def test_unknown_email_and_wrong_password_get_the_same_answer(service, http) -> None:
    _, _, email_addr = await service.register(http)
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    form = await authorize_form(service, http, email_addr, "wrong password 123")
    wrong = await http.post(f"{service.base}/authorize", data=form)
    missing = await http.post(f"{service.base}/authorize", data={**form, "email": unknown})
    assert wrong.status_code == missing.status_code == 401

    def same(text: str, address: str) -> str:  # the CSRF token carries the second it was made in
        return re.sub(r'name="csrf_token" value="[^"]*"', "CSRF", text.replace(address, "EMAIL"))

    assert same(wrong.text, email_addr) == same(missing.text, unknown)
    # A correct sign-in afterwards still works (4 failures are under the limit) and clears the count.
    ok = await http.post(f"{service.base}/authorize", data={**form, "password": STRONG_PASSWORD})
    assert ok.status_code == 302 and ok.headers["location"].startswith(service.callback.url)


async def test_rotated_key_stays_published_until_its_tokens_expire(service, http, sign_in) -> None:
    _, _, email_addr, old = await sign_in.new_owner(http)
    old_kid = jwt.get_unverified_header(old["access_token"])["kid"]

    env = {
        **os.environ,
        "DATABASE_URL": service.dsn,
        "IDENTITY_KEY_ENCRYPTION_KEY": service.settings.key_encryption_key or "",
    }
    code, out, _ = await run_module("unified_identity", "rotate-keys", env=env, merge_stderr=True)
    assert code == 0, out

    published = {k["kid"] for k in (await http.get(f"{service.base}/.well-known/jwks.json")).json()["keys"]}
    assert old_kid in published and len(published) == 2
    r = await http.get(f"{service.base}/userinfo", headers={"Authorization": f"Bearer {old['access_token']}"})
    assert r.status_code == 200  # tokens of the previous key are still good

    client, new = await sign_in(email_addr)
    await client.aclose()
    new_kid = jwt.get_unverified_header(new["access_token"])["kid"]
    assert new_kid != old_kid and new_kid in published
    r = await http.get(f"{service.base}/userinfo", headers={"Authorization": f"Bearer {new['access_token']}"})
    assert r.status_code == 200

    # Once every token of the old key has expired, it leaves the JWKS.
    conn = await service.db()
    try:
        grace = timedelta(seconds=service.settings.key_publish_grace_s)
        later = await keys.jwks(conn, now=datetime.now(UTC) + grace + timedelta(seconds=1), grace=grace)
        soon = await keys.jwks(
            conn, now=datetime.now(UTC) + timedelta(seconds=service.settings.access_token_ttl_s), grace=grace
        )
    finally:
        await conn.close()
    assert {k["kid"] for k in later["keys"]} == {new_kid}
    assert old_kid in {k["kid"] for k in soon["keys"]}


async def test_revocation_and_end_session_end_the_session(service, http, sign_in) -> None:
    _, _, email_addr, token = await sign_in.new_owner(http)
    r = await http.post(
        f"{service.base}/revoke",
        data={"client_id": CLI, "token": token["refresh_token"], "token_type_hint": "refresh_token"},
    )
    assert r.status_code == 200
    r = await token_request(http, service.base, grant_type="refresh_token", refresh_token=token["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # An unknown token is answered 200 as well (RFC 7009 2.2).
    assert (await http.post(f"{service.base}/revoke", data={"client_id": CLI, "token": "nonsense"})).status_code == 200

    client, token = await sign_in(email_addr)
    await client.aclose()
    signed_out = service.callback.url.replace("/callback", "/signed-out")
    r = await http.get(
        f"{service.base}/end-session",
        params={"id_token_hint": token["id_token"], "post_logout_redirect_uri": signed_out, "state": "bye"},
    )
    assert r.status_code == 302 and r.headers["location"] == f"{signed_out}?state=bye"
    r = await token_request(http, service.base, grant_type="refresh_token", refresh_token=token["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = await http.get(f"{service.base}/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert r.status_code == 401
    # An unregistered post-logout URI is not followed.
    r = await http.get(
        f"{service.base}/end-session",
        params={"id_token_hint": token["id_token"], "post_logout_redirect_uri": "http://evil.example/x"},
    )
    assert r.status_code == 400 and "location" not in r.headers


async def test_discovery_document(service, http) -> None:
    doc = (await http.get(f"{service.base}/.well-known/openid-configuration")).json()
    assert doc["issuer"] == service.settings.issuer
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["response_types_supported"] == ["code"]
    assert doc["jwks_uri"] == f"{service.settings.issuer}/.well-known/jwks.json"
    assert doc["id_token_signing_alg_values_supported"] == ["EdDSA"]


async def test_registration_rules(service, http) -> None:
    base = {"legal_name": "Acme", "home_marketplace": "DE", "email": f"x-{uuid.uuid4().hex[:8]}@example.com"}
    r = await http.post(f"{service.base}/v1/accounts", json={**base, "password": "123qweasdzxc"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert "common" in r.json()["detail"]
    r = await http.post(f"{service.base}/v1/accounts", json={**base, "password": "short"})
    assert r.status_code == 422
    r = await http.post(
        f"{service.base}/v1/accounts", json={**base, "home_marketplace": "XX", "password": STRONG_PASSWORD}
    )
    assert r.status_code == 422
    r = await http.post(f"{service.base}/v1/accounts", json={**base, "password": STRONG_PASSWORD})
    assert r.status_code == 201
    r = await http.post(
        f"{service.base}/v1/accounts", json={**base, "email": base["email"].upper(), "password": STRONG_PASSWORD}
    )
    assert r.status_code == 409
    conn = await service.db()
    try:
        row = await conn.fetchrow("SELECT password_hash FROM users WHERE email = $1", base["email"])
        home = await conn.fetchval("SELECT home_marketplace_id FROM accounts")
    finally:
        await conn.close()
    assert row["password_hash"].startswith("$argon2id$") and STRONG_PASSWORD not in row["password_hash"]
    assert home == "A1PA6795UKMFR9"
