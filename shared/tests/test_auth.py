"""Token validation for every service (unified_shared.auth): offline against a cached JWKS, refetched on an
unknown kid (rate-limited), with audience, expiry, permission and marketplace checks answered 401/403."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI

from unified_shared.auth import (
    JwksCache,
    Principal,
    TokenValidator,
    current_principal,
    requires,
    validator_from_settings,
)
from unified_shared.errors import Forbidden, NotFound
from unified_shared.problems import Problem, install_problem_handlers
from unified_shared.revocations import RevocationSet
from unified_shared.testing import TestIssuer
from unified_shared.token_cache import Verified, VerifiedTokens

DE, FR = "A1PA6795UKMFR9", "A13V1IB3VIYZZH"


class FakeJwks:
    """An in-memory JWKS endpoint that counts fetches and can go down."""

    def __init__(self, *issuers: TestIssuer) -> None:
        self.keys: list[dict[str, Any]] = [k for i in issuers for k in i.jwks()["keys"]]
        self.fetches = 0
        self.down = False

    async def __call__(self) -> dict[str, Any]:
        self.fetches += 1
        if self.down:
            raise httpx.ConnectError("identity unreachable")
        return {"keys": list(self.keys)}


def make_validator(
    fetch: FakeJwks, issuer: TestIssuer, *, ttl_s: float = 300.0, min_refetch_s: float = 10.0
) -> TokenValidator:
    cache = JwksCache(fetch, ttl_s=ttl_s, min_refetch_interval_s=min_refetch_s)
    return TokenValidator(cache, issuer=issuer.issuer, audience=issuer.audience)


async def rejected(validator: TokenValidator, token: str) -> Problem:
    with pytest.raises(Problem) as exc:
        await validator.validate(token)
    return exc.value


async def test_a_valid_token_gives_the_principal() -> None:
    issuer = TestIssuer()
    account, user = uuid.uuid4(), uuid.uuid4()
    token = issuer.mint(account_id=account, user_id=user, role="member", permissions=["orders"], marketplaces=[DE, FR])
    principal = await make_validator(FakeJwks(issuer), issuer).validate(token)
    assert principal.account_id == account and principal.user_id == user and principal.role == "member"
    assert principal.permissions == frozenset({"orders"}) and principal.marketplaces == frozenset({DE, FR})
    assert principal.covers(DE) and not principal.covers("ATVPDKIKX0DER")
    assert principal.has("orders") and not principal.has("billing")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_public_key(issuer: TestIssuer, payload: str) -> str:
    """The classic algorithm-confusion forgery: an HMAC keyed with the (public) verification key."""
    header = _b64(json.dumps({"alg": "HS256", "kid": issuer.kid, "typ": "JWT"}).encode())
    public = base64.urlsafe_b64decode(issuer.jwks()["keys"][0]["x"] + "==")
    mac = hmac.new(public, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(mac)}"


async def test_forged_expired_and_misdirected_tokens_are_401() -> None:
    issuer = TestIssuer()
    fetch = FakeJwks(issuer)
    validator = make_validator(fetch, issuer)
    account = uuid.uuid4()
    good = issuer.mint(account_id=account)
    head, payload, sig = good.split(".")
    flipped = bytearray(base64.urlsafe_b64decode(sig + "=="))
    flipped[-1] ^= 0x01
    claims = jwt.decode(good, options={"verify_signature": False})
    forged = {**claims, "role": "owner", "account_id": str(uuid.uuid4())}
    other_key = TestIssuer()
    other_key.kid = issuer.kid  # same kid, different key: a forgery

    cases = {
        "tampered signature": f"{head}.{payload}.{_b64(bytes(flipped))}",
        "tampered claims": f"{head}.{_b64(json.dumps(forged).encode())}.{sig}",
        "alg none": f"{_b64(json.dumps({'alg': 'none', 'kid': issuer.kid}).encode())}.{payload}.",
        "alg HS256 keyed with the public key": hs256_with_public_key(issuer, payload),
        "signed by another key": other_key.mint(account_id=account),
        "expired": issuer.mint(account_id=account, ttl_s=-60),
        "wrong audience": issuer.mint(account_id=account, aud="another-audience"),
        "wrong issuer": issuer.mint(account_id=account, iss="http://evil.test"),
        "no account claims": jwt.encode(
            {k: v for k, v in claims.items() if k != "account_id"},
            issuer._key,
            algorithm="EdDSA",
            headers={"kid": issuer.kid},
        ),
        "marketplaces as a bare string": jwt.encode(
            {**claims, "marketplaces": "DE"}, issuer._key, algorithm="EdDSA", headers={"kid": issuer.kid}
        ),
        "not a JWT": "not-a-token",
    }
    assert (await validator.validate(good)).account_id == account
    for name, token in cases.items():
        problem = await rejected(validator, token)
        assert problem.status == 401, name
        assert problem.headers["WWW-Authenticate"].startswith("Bearer"), name


async def test_unknown_kid_triggers_one_rate_limited_refetch() -> None:
    issuer = TestIssuer()
    fetch = FakeJwks(issuer)
    validator = make_validator(fetch, issuer, min_refetch_s=3600)
    await validator.validate(issuer.mint(account_id=uuid.uuid4()))
    assert fetch.fetches == 1
    stranger = TestIssuer()
    stranger.kid = "unknown-kid"
    for _ in range(5):
        problem = await rejected(validator, stranger.mint(account_id=uuid.uuid4()))
        assert problem.status == 401 and "unknown key" in (problem.detail or "")
    assert fetch.fetches == 1  # refetch attempts are rate-limited: a flood of kids is not a flood of fetches


async def test_a_rotated_key_is_picked_up_without_restart() -> None:
    old = TestIssuer()
    fetch = FakeJwks(old)
    validator = make_validator(fetch, old, min_refetch_s=0.0)
    await validator.validate(old.mint(account_id=uuid.uuid4()))
    new = TestIssuer(issuer=old.issuer)
    new.kid = "key-2"
    fetch.keys += new.jwks()["keys"]  # identity rotated: both keys published
    assert (await validator.validate(new.mint(account_id=uuid.uuid4()))).role == "owner"
    assert fetch.fetches == 2
    assert (await validator.validate(old.mint(account_id=uuid.uuid4()))).role == "owner"


async def test_an_empty_or_unreachable_jwks_is_not_fetched_on_every_request() -> None:
    issuer = TestIssuer()
    fetch = FakeJwks()  # publishes nothing
    validator = make_validator(fetch, issuer, min_refetch_s=3600)
    for _ in range(3):
        assert (await rejected(validator, issuer.mint(account_id=uuid.uuid4()))).status == 401
    assert fetch.fetches == 1

    down = FakeJwks(issuer)
    down.down = True
    validator = make_validator(down, issuer, min_refetch_s=3600)
    for _ in range(3):
        assert (await rejected(validator, issuer.mint(account_id=uuid.uuid4()))).status == 503
    assert down.fetches == 1


async def test_cached_keys_keep_working_while_the_identity_service_is_down() -> None:
    issuer = TestIssuer()
    fetch = FakeJwks(issuer)
    validator = make_validator(fetch, issuer, ttl_s=0.0, min_refetch_s=0.0)
    await validator.validate(issuer.mint(account_id=uuid.uuid4()))
    fetch.down = True
    principal = await validator.validate(issuer.mint(account_id=uuid.uuid4()))  # TTL passed, refetch fails
    assert principal.role == "owner" and fetch.fetches == 2


async def test_validation_against_a_jwks_served_over_http() -> None:
    issuer = TestIssuer()
    async with issuer.serve() as jwks_url:
        validator = validator_from_settings(issuer.issuer, issuer.audience, jwks_url)
        principal = await validator.validate(issuer.mint(account_id=uuid.uuid4(), marketplaces="*"))
    assert principal.marketplaces == "*" and principal.covers(DE)


def _app(validator: TokenValidator) -> FastAPI:
    app = FastAPI()
    app.state.token_validator = validator
    install_problem_handlers(app)

    @app.get("/v1/accounts/{account_id}/orders/{marketplace_id}")
    async def orders(account_id: uuid.UUID, marketplace_id: str, p: Principal = Depends(requires("orders"))) -> dict:
        p.require_account(account_id)
        p.require_marketplace(marketplace_id)
        return {"ok": True}

    @app.get("/me")
    async def me(p: Principal = Depends(current_principal)) -> dict:
        return {"user_id": str(p.user_id)}

    return app


def _without_request_id(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "request_id"}


def test_the_principal_refuses_with_http_free_domain_errors() -> None:
    p = Principal(uuid.uuid4(), uuid.uuid4(), "member", frozenset({"orders"}), frozenset({DE}), "t")
    with pytest.raises(Forbidden):
        p.require("messages")
    with pytest.raises(Forbidden):
        p.require_role("owner", "admin")
    with pytest.raises(Forbidden):
        p.require_marketplace(FR)
    with pytest.raises(NotFound):
        p.require_account(uuid.uuid4())
    p.require("orders")
    p.require_role("member")
    p.require_marketplace(DE)
    p.require_account(p.account_id)


async def test_the_fastapi_dependency_answers_401_403_404_with_problem_bodies() -> None:
    issuer = TestIssuer()
    app = _app(make_validator(FakeJwks(issuer), issuer))
    account = uuid.uuid4()
    member = issuer.mint(account_id=account, role="member", permissions=["orders"], marketplaces=[DE])
    no_orders = issuer.mint(account_id=account, role="member", permissions=["messages"], marketplaces=[DE])
    owner = issuer.mint(account_id=account, role="owner", permissions=[], marketplaces="*")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:

        async def get(path: str, token: str | None) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return await client.get(path, headers=headers)

        r = await get("/me", None)
        assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = await client.get("/me", headers={"Authorization": f"Basic {member}"})
        assert r.status_code == 401
        assert (await get(f"/v1/accounts/{account}/orders/{DE}", member)).status_code == 200
        r = await get(f"/v1/accounts/{account}/orders/{FR}", member)  # outside the marketplace scope
        assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
        assert _without_request_id(r.json()) == {
            "type": "about:blank",
            "title": "Forbidden",
            "status": 403,
            "detail": f"marketplace {FR} is outside your marketplace scope",
            "instance": f"/v1/accounts/{account}/orders/{FR}",
        }
        r = await get(f"/v1/accounts/{account}/orders/{DE}", no_orders)
        assert r.status_code == 403
        assert r.json()["title"] == "Forbidden" and r.json()["detail"] == "this call needs the 'orders' permission"
        other = uuid.uuid4()
        r = await get(f"/v1/accounts/{other}/orders/{DE}", member)
        assert r.status_code == 404
        assert _without_request_id(r.json()) == {
            "type": "about:blank",
            "title": "Not found",
            "status": 404,
            "detail": "no such account",
            "instance": f"/v1/accounts/{other}/orders/{DE}",
        }
        assert (await get(f"/v1/accounts/{account}/orders/{FR}", owner)).status_code == 200  # owner: everything
        expired = issuer.mint(account_id=account, ttl_s=-60)
        assert (await get("/me", expired)).status_code == 401


# -- tokens verified once are remembered (unified_shared.token_cache) --------------------------------------


async def test_a_remembered_token_is_still_refused_once_revoked_or_refused_by_the_service_check() -> None:
    issuer = TestIssuer()
    revocations = RevocationSet()
    refused_sessions: set[str] = set()

    async def check(claims: dict[str, Any]) -> str | None:
        return "signed out here" if claims["sid"] in refused_sessions else None

    validator = TokenValidator(
        JwksCache(FakeJwks(issuer)), issuer=issuer.issuer, audience=issuer.audience, revocations=revocations,
        check=check,
    )  # fmt: skip
    revoked, checked = issuer.mint(account_id=uuid.uuid4()), issuer.mint(account_id=uuid.uuid4())
    for token in (revoked, checked):
        await validator.validate(token)
        await validator.validate(token)
    assert len(validator.verified) == 2  # remembered: the second call verified nothing
    revocations.revoke_session(jwt.decode(revoked, options={"verify_signature": False})["sid"], time.time())
    refused_sessions.add(jwt.decode(checked, options={"verify_signature": False})["sid"])
    assert "session of this token has ended" in ((await rejected(validator, revoked)).detail or "")
    assert "signed out here" in ((await rejected(validator, checked)).detail or "")


async def test_a_remembered_token_is_refused_once_it_expires() -> None:
    issuer = TestIssuer()
    validator = make_validator(FakeJwks(issuer), issuer)
    validator.leeway_s = 0
    token = issuer.mint(account_id=uuid.uuid4(), ttl_s=1)
    await validator.validate(token)
    deadline = time.monotonic() + 10
    while True:  # accepted until its exp, refused from then on (PyJWT's rule, remembered or not)
        try:
            await validator.validate(token)
        except Problem as exc:
            assert exc.status == 401 and "expired" in (exc.detail or "")
            break
        assert time.monotonic() < deadline, "the remembered token outlived its expiry"
        await asyncio.sleep(0.05)
    assert len(validator.verified) == 0


async def test_a_remembered_token_is_refused_once_its_key_leaves_the_jwks() -> None:
    issuer = TestIssuer()
    fetch = FakeJwks(issuer)
    validator = make_validator(fetch, issuer, ttl_s=0.0, min_refetch_s=0.0)
    token = issuer.mint(account_id=uuid.uuid4())
    await validator.validate(token)
    await validator.validate(token)
    successor = TestIssuer()
    successor.kid = "key-2"
    fetch.keys = successor.jwks()["keys"]  # identity withdrew the key: only its successor is published
    problem = await rejected(validator, token)
    assert problem.status == 401 and "unknown key" in (problem.detail or "")


def test_remembered_tokens_are_bounded_and_expire_by_their_clock() -> None:
    now = [1000.0]
    tokens: VerifiedTokens[str] = VerifiedTokens(max_entries=2, clock=lambda: now[0])
    key = jwt.PyJWK.from_dict(TestIssuer().jwks()["keys"][0])
    for name, expires in (("a", 1010.0), ("b", 1100.0), ("c", 1100.0)):
        tokens.put(name, Verified("kid", key, expires, name))
    assert len(tokens) == 2 and tokens.get("a", 5) is None  # the least recently used went first
    now[0] = 1100.0 + 4.9
    assert tokens.get("b", 5) is not None  # within the leeway
    now[0] = 1100.0 + 5
    assert tokens.get("b", 5) is None and tokens.get("c", 5) is None and len(tokens) == 0
