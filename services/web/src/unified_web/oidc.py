"""The web app as a confidential OpenID Connect client of identity: authorization code + PKCE (S256),
client_secret_basic at the token endpoint, ID token checked against identity's JWKS (issuer, audience,
nonce), refresh with rotation, revocation and RP-initiated logout."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from unified_shared.auth import ALLOWED_ALGORITHMS, JwksCache
from unified_shared.clock import Clock, system_clock
from unified_web.sessions import RefreshFailed, Tokens
from unified_web.settings import Settings

SCOPE = "openid email offline_access"


class SignInFailed(Exception):
    """The callback or the code exchange failed; the message is safe to show."""


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass(frozen=True, slots=True)
class IdClaims:
    user_id: str
    account_id: str
    email: str | None


class OidcClient:
    def __init__(self, http: httpx.AsyncClient, settings: Settings, *, clock: Clock = system_clock) -> None:
        """The client ``settings`` describe: identity as the issuer, this app's client ID and secret (read when
        needed, so that a rotated secret file is picked up), and where identity sends the browser back."""
        self.http = http
        self.issuer = settings.identity_issuer.rstrip("/")
        self.client_id = settings.oidc_client_id
        self._secret = settings.client_secret
        self.redirect_uri = settings.redirect_uri
        self.post_logout_redirect_uri = settings.post_logout_redirect_uri
        self.clock = clock
        self._discovery: dict[str, Any] | None = None
        self.jwks = JwksCache.from_url(f"{self.issuer}/.well-known/jwks.json")

    async def discovery(self) -> dict[str, Any]:
        if self._discovery is None:
            answer = await self.http.get(f"{self.issuer}/.well-known/openid-configuration")
            answer.raise_for_status()
            self._discovery = answer.json()
        return self._discovery

    async def authorization_url(self, *, state: str, nonce: str, challenge: str) -> str:
        endpoint = (await self.discovery())["authorization_endpoint"]
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": SCOPE,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return f"{endpoint}?{urlencode(query)}"

    async def _token(self, form: dict[str, str]) -> dict[str, Any]:
        endpoint = (await self.discovery())["token_endpoint"]
        answer = await self.http.post(endpoint, data=form, auth=(self.client_id, self._secret()))
        body: dict[str, Any] = answer.json() if answer.content else {}
        if answer.status_code != 200:
            raise RefreshFailed(f"{body.get('error', answer.status_code)}: {body.get('error_description', '')}")
        return body

    @staticmethod
    def _tokens(body: dict[str, Any], now: datetime) -> Tokens:
        return Tokens(
            access_token=str(body["access_token"]),
            refresh_token=body.get("refresh_token"),
            id_token=body.get("id_token"),
            access_expires_at=now + timedelta(seconds=int(body.get("expires_in", 300))),
        )

    async def exchange_code(self, code: str, verifier: str, now: datetime) -> Tokens:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier,
        }
        try:
            return self._tokens(await self._token(form), now)
        except RefreshFailed as exc:
            raise SignInFailed(f"identity refused the sign-in code ({exc})") from None

    async def refresh(self, refresh_token: str) -> Tokens:
        body = await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})
        return self._tokens(body, self.clock())

    async def id_claims(self, id_token: str, nonce: str) -> IdClaims:
        """The ID token, verified: signature (JWKS), issuer, audience = this client, expiry and our nonce."""
        try:
            header = jwt.get_unverified_header(id_token)
            key = await self.jwks.key(str(header.get("kid")))
            if key is None:
                raise SignInFailed("the ID token is signed with an unknown key")
            claims = jwt.decode(
                id_token,
                key=key.key,
                algorithms=ALLOWED_ALGORITHMS,
                audience=self.client_id,
                issuer=self.issuer,
                leeway=5,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise SignInFailed(f"the ID token is not valid: {exc}") from None
        if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise SignInFailed("the ID token does not carry this sign-in's nonce")
        return IdClaims(str(claims["sub"]), str(claims["account_id"]), claims.get("email"))

    async def revoke(self, token: str) -> None:
        endpoint = (await self.discovery()).get("revocation_endpoint", f"{self.issuer}/revoke")
        # The session row is gone either way; identity's single sign-on session ends at end-session.
        with contextlib.suppress(httpx.HTTPError):
            await self.http.post(endpoint, data={"token": token}, auth=(self.client_id, self._secret()))

    async def end_session_url(self, id_token: str | None) -> str:
        endpoint = (await self.discovery()).get("end_session_endpoint", f"{self.issuer}/end-session")
        query = {"post_logout_redirect_uri": self.post_logout_redirect_uri, "client_id": self.client_id}
        if id_token:
            query["id_token_hint"] = id_token
        return f"{endpoint}?{urlencode(query)}"
