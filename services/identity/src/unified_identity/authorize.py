"""The authorization endpoint: client and redirect checks, request parameters, codes."""

from __future__ import annotations

import logging
from datetime import timedelta

import asyncpg

from unified_identity import domain, session_store, store
from unified_identity.base import Base
from unified_identity.domain import OAuthError
from unified_identity.results import (
    AuthorizeRequest,
    Client,
    SignedIn,
)

log = logging.getLogger(__name__)


class Authorize(Base):
    # -- authorization endpoint --------------------------------------------------------------------------------
    async def client(self, client_id: str | None) -> Client | None:
        if not client_id:
            return None
        async with self.pool.acquire() as conn:
            row = await store.client(conn, client_id)
        return client_of(row) if row is not None else None

    async def check_client_redirect(self, client_id: str | None, redirect_uri: str | None) -> Client:
        """Errors here must not redirect (RFC 6749 4.1.2.1): the redirect target itself is untrusted."""
        client = await self.client(client_id)
        if client is None:
            raise OAuthError("invalid_client", "unknown client_id")
        if not redirect_uri:
            raise OAuthError("invalid_request", "redirect_uri is required")
        if not domain.redirect_uri_registered(redirect_uri, client.redirect_uris):
            raise OAuthError("invalid_request", "redirect_uri does not match a registered redirect URI")
        return client

    @staticmethod
    def check_authorize_params(params: dict[str, str]) -> AuthorizeRequest:
        """The checks whose errors go back to the (already verified) redirect URI."""
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "only response_type=code is supported")
        challenge = params.get("code_challenge") or ""
        if not challenge:
            raise OAuthError("invalid_request", "code_challenge is required (PKCE)")
        if params.get("code_challenge_method") != "S256":
            raise OAuthError("invalid_request", "code_challenge_method must be S256")
        if not domain.valid_code_challenge(challenge):
            raise OAuthError("invalid_request", "code_challenge is not a base64url SHA-256 value")
        scope = " ".join(dict.fromkeys((params.get("scope") or "openid").split()))
        try:
            prompt = domain.parse_prompt(params.get("prompt"))
            max_age = domain.parse_max_age(params.get("max_age"))
        except domain.Invalid as exc:
            raise OAuthError("invalid_request", exc.detail) from None
        return AuthorizeRequest(
            client_id=params["client_id"],
            redirect_uri=params["redirect_uri"],
            scope=scope,
            state=params.get("state") or None,
            nonce=params.get("nonce") or None,
            code_challenge=challenge,
            prompt=prompt,
            max_age=max_age,
            login_hint=params.get("login_hint") or None,
        )

    async def create_code(self, request: AuthorizeRequest, signed_in: SignedIn) -> str:
        code = domain.new_secret()
        async with self.pool.acquire() as conn:
            expires_at = self.clock() + timedelta(seconds=self.settings.authorization_code_ttl_s)
            await session_store.insert_code(conn, domain.secret_hash(code), request, signed_in, expires_at)
        return code


def client_of(row: asyncpg.Record) -> Client:
    """A stored client row as the result type the commands hand upward."""
    stored = row["secret_hash"]
    return Client(
        client_id=row["client_id"],
        name=row["name"],
        redirect_uris=tuple(row["redirect_uris"]),
        post_logout_redirect_uris=tuple(row["post_logout_redirect_uris"]),
        secret_hash=bytes(stored) if stored is not None else None,
    )
