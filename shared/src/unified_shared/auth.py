"""Bearer-token validation for every service: offline, against the identity service's JWKS.

The JWKS is cached; a token signed with an unknown ``kid`` triggers one refetch (rate-limited), so key
rotation needs no restart. Tokens carry the account, role, permissions, marketplace scope and the session
(``sid``); a token whose session or membership has ended is refused (``unified_shared.revocations``), and a
service may add a check of its own (identity looks the session up in its database on every call).

A token verified once is remembered (``VerifiedTokens``, keyed by the raw token) until it expires or its key
leaves the JWKS: a repeat skips the signature check, a fifth of a small request's CPU. Only the signature
and claim verification is remembered; the revocation and service checks run on every request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

import httpx
import jwt
from fastapi import Request

from unified_shared.errors import Forbidden, NotFound
from unified_shared.problems import Problem
from unified_shared.revocations import RevocationSet
from unified_shared.token_cache import Verified, VerifiedTokens

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ["EdDSA", "ES256"]
Scope = Literal["*"] | frozenset[str]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the verified claims of an access token."""

    user_id: UUID
    account_id: UUID
    role: str
    permissions: frozenset[str]
    marketplaces: Scope  # "*" or SP-API marketplace IDs
    token_id: str
    claims: dict[str, Any] = field(default_factory=dict, compare=False)

    def covers(self, marketplace_id: str) -> bool:
        return self.marketplaces == "*" or marketplace_id in self.marketplaces

    def visible(self, marketplace_ids: list[str]) -> list[str]:
        return [m for m in marketplace_ids if self.covers(m)]

    def has(self, permission: str) -> bool:
        return self.role == "owner" or permission in self.permissions

    def require(self, permission: str) -> None:
        if not self.has(permission):
            raise Forbidden(None, f"this call needs the '{permission}' permission")

    def require_role(self, *roles: str) -> None:
        if self.role not in roles:
            raise Forbidden(None, f"this call needs one of the roles: {', '.join(roles)}")

    def require_marketplace(self, marketplace_id: str) -> None:
        if not self.covers(marketplace_id):
            raise Forbidden(None, f"marketplace {marketplace_id} is outside your marketplace scope")

    def require_account(self, account_id: UUID) -> None:
        if account_id != self.account_id:
            # Not 403: do not confirm that another account exists.
            raise NotFound(None, "no such account")


JwksFetcher = Callable[[], Awaitable[dict[str, Any]]]


class JwksCache:
    def __init__(self, fetch: JwksFetcher, *, ttl_s: float = 300.0, min_refetch_interval_s: float = 10.0) -> None:
        self._fetch = fetch
        self.ttl_s = ttl_s
        self.min_refetch_interval_s = min_refetch_interval_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0  # last successful fetch
        self._attempted_at: float | None = None  # last fetch attempt, successful or not
        self._last_error: httpx.HTTPError | None = None
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> JwksCache:
        async def fetch() -> dict[str, Any]:
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.get(url)
                response.raise_for_status()
                data: dict[str, Any] = response.json()
                return data

        return cls(fetch, **kwargs)

    def _attempted_recently(self, now: float) -> bool:
        return self._attempted_at is not None and now - self._attempted_at < self.min_refetch_interval_s

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            now = time.monotonic()
            # Every fetch, forced or not, is rate-limited once an attempt was made, so neither a flood of
            # unknown kids nor an empty or unreachable JWKS turns each request into a fetch.
            if self._attempted_recently(now):
                return
            if not force and self._fetched_at and now - self._fetched_at < self.ttl_s:
                return
            self._attempted_at = now
            try:
                data = await self._fetch()
            except httpx.HTTPError as exc:
                self._last_error = exc
                raise
            self._last_error = None
            self.fetch_count += 1
            keys = {}
            for jwk in data.get("keys", []):
                if "kid" not in jwk:
                    continue
                try:
                    keys[jwk["kid"]] = jwt.PyJWK.from_dict(jwk)
                except jwt.PyJWTError:
                    log.warning("JWKS key %s skipped: unsupported key type or algorithm", jwk.get("kid"))
            self._keys = keys
            self._fetched_at = time.monotonic()

    async def key(self, kid: str) -> jwt.PyJWK | None:
        try:
            await self._refresh(force=False)
        except httpx.HTTPError:
            if not self._keys:
                raise
            # The identity service is unreachable: keep validating with the keys we have.
            log.warning("JWKS refresh failed; using the cached keys")
        if kid not in self._keys:
            await self._refresh(force=True)  # maybe rotated: one refetch, rate-limited
        if not self._keys and self._last_error is not None:
            raise self._last_error  # no keys at all yet: the identity service is unreachable (503), not 401
        return self._keys.get(kid)


def _unauthorized(detail: str) -> Problem:
    problem = Problem(401, "Unauthorized", detail)
    problem.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return problem


ClaimsCheck = Callable[[dict[str, Any]], Awaitable[str | None]]


class TokenValidator:
    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        audience: str,
        leeway_s: int = 5,
        revocations: RevocationSet | None = None,
        check: ClaimsCheck | None = None,
    ) -> None:
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self.revocations = revocations
        # A service's own check of verified claims: returns why the token is refused, or None.
        self.check = check
        self.verified: VerifiedTokens[Principal] = VerifiedTokens()

    async def validate(self, token: str) -> Principal:
        """The principal of a valid token, else 401 (503 while the JWKS cannot be had)."""
        principal = await self._remembered(token) or await self._verify(token)
        claims = principal.claims
        refusal = self.revocations.refusal(claims) if self.revocations is not None else None
        if refusal is None and self.check is not None:
            refusal = await self.check(claims)
        if refusal is not None:
            raise _unauthorized(refusal)
        return principal

    async def _remembered(self, token: str) -> Principal | None:
        """The principal of a token verified before, unexpired, whose key the JWKS still holds."""
        entry = self.verified.get(token, self.leeway_s)
        if entry is None:
            return None
        try:
            key = await self.jwks.key(entry.kid)  # refreshes the JWKS on its schedule, as a first sight would
        except httpx.HTTPError:
            key = None
        if key is not entry.key:
            self.verified.forget(token)
            return None  # rotated, removed or refetched: verify again against what the JWKS holds now
        return entry.principal

    async def _verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"malformed token: {exc}") from None
        if header.get("alg") not in ALLOWED_ALGORITHMS:
            raise _unauthorized(f"token algorithm {header.get('alg')!r} is not accepted")
        kid = header.get("kid")
        if not kid:
            raise _unauthorized("token has no key id")
        try:
            key = await self.jwks.key(kid)
        except httpx.HTTPError as exc:
            raise Problem(503, "Identity keys unavailable", f"cannot fetch JWKS: {exc}") from None
        if key is None:
            raise _unauthorized("token signed with an unknown key")
        if key.algorithm_name != header["alg"]:
            raise _unauthorized("token algorithm does not match its key")
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=ALLOWED_ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "jti", "sid"]},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("token expired") from None
        except jwt.InvalidAudienceError:
            raise _unauthorized("token is for another audience") from None
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"invalid token: {exc}") from None
        principal = principal_from_claims(claims)
        self.verified.put(token, Verified(kid, key, float(claims["exp"]), principal))
        return principal


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    try:
        scope_claim = claims["marketplaces"]
        permissions = claims.get("permissions", [])
        # A bare string other than "*" would otherwise become a set of its characters.
        if isinstance(scope_claim, str) and scope_claim != "*":
            raise ValueError('marketplaces must be "*" or a list')
        if not isinstance(permissions, list):
            raise ValueError("permissions must be a list")
        scope: Scope = "*" if scope_claim == "*" else frozenset(str(m) for m in scope_claim)
        return Principal(
            user_id=UUID(claims["sub"]),
            account_id=UUID(claims["account_id"]),
            role=str(claims["role"]),
            permissions=frozenset(str(p) for p in permissions),
            marketplaces=scope,
            token_id=str(claims["jti"]),
            claims=claims,
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise _unauthorized(f"token lacks account claims: {exc}") from None


def validator_from_settings(
    issuer: str, audience: str, jwks_url: str | None, *, revocations: RevocationSet | None = None
) -> TokenValidator:
    url = jwks_url or f"{issuer.rstrip('/')}/.well-known/jwks.json"
    return TokenValidator(JwksCache.from_url(url), issuer=issuer, audience=audience, revocations=revocations)


def bearer_token(request: Request) -> str:
    """The access token the request carries (``Authorization: Bearer``), or 401."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("missing bearer token")
    return token.strip()


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the verified caller. The app must set ``app.state.token_validator``."""
    validator: TokenValidator = request.app.state.token_validator
    return await validator.validate(bearer_token(request))


SP_API_TOKEN_HEADER = "x-amz-access-token"


async def sp_api_principal(request: Request) -> Principal:
    """FastAPI dependency for SP-API-shaped paths: the bearer header, or the token where SP-API clients send it.

    SP-API clients (e.g. python-amazon-sp-api) put the access token in ``x-amz-access-token`` and send no
    ``Authorization: Bearer``; both are accepted here, validated the same way. Should both be present they must
    carry the same token: two different credentials in one request are refused rather than one picked.
    """
    header = request.headers.get("authorization", "")
    scheme, _, bearer = header.partition(" ")
    bearer = bearer.strip() if scheme.lower() == "bearer" else ""
    amz = request.headers.get(SP_API_TOKEN_HEADER, "").strip()
    if bearer and amz and bearer != amz:
        raise _unauthorized(f"Authorization and {SP_API_TOKEN_HEADER} carry different tokens")
    token = bearer or amz
    if not token:
        raise _unauthorized(f"missing bearer token (Authorization: Bearer or {SP_API_TOKEN_HEADER})")
    validator: TokenValidator = request.app.state.token_validator
    return await validator.validate(token)


def requires(*permissions: str) -> Callable[[Request], Awaitable[Principal]]:
    """FastAPI dependency factory: the verified caller, who must hold every one of ``permissions`` (else 403)."""

    async def dependency(request: Request) -> Principal:
        principal = await current_principal(request)
        for permission in permissions:
            principal.require(permission)
        return principal

    return dependency
