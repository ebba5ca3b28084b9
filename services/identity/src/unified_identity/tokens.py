"""The token endpoint: client authentication, code exchange, refresh rotation, issuing tokens."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote
from uuid import UUID, uuid4

import asyncpg

from unified_identity import domain, keys, session_store, store
from unified_identity.authorize import client_of
from unified_identity.base import Base, Clock
from unified_identity.domain import OAuthError
from unified_identity.results import Client, TokenGrant

log = logging.getLogger(__name__)


class Tokens(Base):
    # -- token endpoint ----------------------------------------------------------------------------------------
    async def authenticate_client(
        self, conn: asyncpg.Connection, form: dict[str, str], authorization: str | None
    ) -> Client:
        """Public clients name themselves; confidential ones prove it (client_secret_basic or _post)."""
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                raw = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise OAuthError("invalid_client", "malformed Basic credentials") from None
            basic_id, _, basic_secret = raw.partition(":")
            client_id, secret = unquote(basic_id), unquote(basic_secret)
        if not client_id:
            raise OAuthError("invalid_client", "client_id is required")
        row = await store.client(conn, client_id)
        if row is None:
            raise OAuthError("invalid_client", "unknown client")
        client = client_of(row)
        stored = client.secret_hash
        if stored is not None and (not secret or not hmac.compare_digest(domain.secret_hash(secret), stored)):
            raise OAuthError("invalid_client", "client authentication failed")
        return client

    async def token(self, form: dict[str, str], authorization: str | None) -> TokenGrant:
        grant_type = form.get("grant_type")
        if grant_type not in ("authorization_code", "refresh_token"):
            raise OAuthError("unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
        async with self.pool.acquire() as conn:
            client = await self.authenticate_client(conn, form, authorization)
            async with conn.transaction():
                if grant_type == "authorization_code":
                    outcome = await self._exchange_code(conn, client, form)
                else:
                    outcome = await self._refresh(conn, client, form)
        self.runtime.notify_relay()  # a reused code or refresh token revoked a session: publish it now
        if isinstance(outcome, OAuthError):
            raise outcome
        return outcome

    async def _exchange_code(
        self, conn: asyncpg.Connection, client: Client, form: dict[str, str]
    ) -> TokenGrant | OAuthError:
        found = await _presented(conn, form, "code", session_store.code_for_update, "unknown authorization code")
        if isinstance(found, OAuthError):
            return found
        code_hash, row = found
        now = self.clock()
        if row["used_at"] is not None:
            # RFC 6749 4.1.2: a code used twice revokes what it was exchanged for.
            if row["session_id"] is not None:
                await self._revoke_session(conn, row["session_id"], now, "authorization code reused")
            return OAuthError("invalid_grant", "authorization code already used")
        await session_store.mark_code_used(conn, code_hash, now, None)  # burnt even if a check below fails
        if row["client_id"] != client.client_id:
            return OAuthError("invalid_grant", "authorization code was issued to another client")
        if row["expires_at"] <= now:
            return OAuthError("invalid_grant", "authorization code expired")
        if form.get("redirect_uri") != row["redirect_uri"]:
            return OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
        if not domain.pkce_ok(form.get("code_verifier"), row["code_challenge"]):
            return OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        browser_session_id = row["browser_session_id"]
        if browser_session_id is not None and await session_store.browser_session_ended(conn, browser_session_id):
            return OAuthError("invalid_grant", "the user signed out after this code was issued")
        session_id = uuid4()
        await session_store.insert_session(
            conn, session_id=session_id, browser_session_id=row["browser_session_id"], **_grant_fields(row)
        )
        await session_store.mark_code_used(conn, code_hash, now, session_id)
        return await self._issue(
            conn, session_id=session_id, granted=Granted(**_grant_fields(row)), nonce=row["nonce"], now=now
        )

    async def _refresh(self, conn: asyncpg.Connection, client: Client, form: dict[str, str]) -> TokenGrant | OAuthError:
        found = await _presented(conn, form, "refresh_token", session_store.refresh_for_update, "unknown refresh token")
        if isinstance(found, OAuthError):
            return found
        token_hash, row = found
        now = self.clock()
        if row["client_id"] != client.client_id:
            return OAuthError("invalid_grant", "refresh token was issued to another client")
        if row["revoked_at"] is not None:
            return OAuthError("invalid_grant", "refresh token revoked")
        if row["used_at"] is not None:
            # A rotated token came back: someone holds a copy. Revoke the whole family (the session).
            await self._revoke_session(conn, row["session_id"], now, "refresh token reused")
            log.warning("refresh token reuse; session revoked", extra={"session_id": str(row["session_id"])})
            return OAuthError("invalid_grant", "refresh token already used; the session is revoked")
        if row["expires_at"] <= now:
            return OAuthError("invalid_grant", "refresh token expired")
        await session_store.mark_refresh_used(conn, token_hash, now)
        return await self._issue(
            conn, session_id=row["session_id"], granted=Granted(**_grant_fields(row)), nonce=None, now=now
        )

    async def _issue(
        self,
        conn: asyncpg.Connection,
        *,
        session_id: UUID,
        granted: Granted,
        nonce: str | None,
        now: datetime,
    ) -> TokenGrant | OAuthError:
        """Access token (+ ID token for openid) from the membership as it is now, and a new refresh token."""
        user_id, account_id, client_id = granted.user_id, granted.account_id, granted.client_id
        scope, auth_time = granted.scope, granted.auth_time
        member = await store.membership(conn, account_id, user_id)
        if member is None:
            await self._revoke_session(conn, session_id, now, "membership ended")
            return OAuthError("invalid_grant", "the user is no longer a member of the account")
        s = self.settings
        key = await keys.active(conn, self.key_cipher)
        now = await _after_change(member["access_changed_at"], now, self.clock)
        iat = int(now.timestamp())
        access_claims: dict[str, Any] = {
            "iss": s.issuer,
            "sub": str(user_id),
            "aud": s.token_audience,
            "iat": iat,
            "nbf": iat,
            "exp": iat + s.access_token_ttl_s,
            "jti": uuid4().hex,
            "client_id": client_id,
            "scope": scope,
            "sid": str(session_id),
            "account_id": str(account_id),
            "role": member["role"],
            "permissions": domain.token_permissions(member["role"], member["permissions"]),
            "marketplaces": member["marketplaces"],
        }
        id_token: str | None = None
        if domain.scope_has(scope, "openid"):
            id_claims: dict[str, Any] = {
                "iss": s.issuer,
                "sub": str(user_id),
                "aud": client_id,
                "iat": iat,
                "exp": iat + s.id_token_ttl_s,
                "auth_time": int(auth_time.timestamp()),
                "sid": str(session_id),
                "email": member["email"],
                "email_verified": member["email_verified"],
                "account_id": str(account_id),
            }
            if nonce:
                id_claims["nonce"] = nonce
            id_token = key.sign(id_claims)
        refresh = domain.new_secret()
        await session_store.insert_refresh(
            conn, domain.secret_hash(refresh), session_id, now, now + timedelta(seconds=s.refresh_token_ttl_s)
        )
        return TokenGrant(
            access_token=key.sign(access_claims, typ="at+jwt"),
            expires_in=s.access_token_ttl_s,
            scope=scope,
            refresh_token=refresh,
            id_token=id_token,
        )


async def _after_change(changed_at: datetime | None, now: datetime, clock: Clock) -> datetime:
    """A token issued in the second of a membership change counts as issued before it (``iat`` has whole
    seconds) and every service would refuse it: wait for the next second (rare, at most one second)."""
    if changed_at is None:
        return now
    wait = math.ceil(changed_at.timestamp()) - now.timestamp()
    if 0 < wait <= 1:
        await asyncio.sleep(wait)
        return clock()
    return now


@dataclass(frozen=True, slots=True)
class Granted:
    """What a code or refresh token grants: the user, account, client, scope and sign-in time it carries."""

    user_id: UUID
    account_id: UUID
    client_id: str
    scope: str
    auth_time: datetime


def _grant_fields(row: asyncpg.Record) -> dict[str, Any]:
    return {k: row[k] for k in ("user_id", "account_id", "client_id", "scope", "auth_time")}


async def _presented(
    conn: asyncpg.Connection,
    form: dict[str, str],
    field: str,
    locked_row: Callable[[asyncpg.Connection, bytes], Awaitable[asyncpg.Record | None]],
    unknown: str,
) -> tuple[bytes, asyncpg.Record] | OAuthError:
    """The secret a token request presents in ``field`` (a code or a refresh token): its hash and its row,
    locked by ``locked_row``; or the error to answer (none given, or none such)."""
    secret = form.get(field)
    if not secret:
        return OAuthError("invalid_request", f"{field} is required")
    secret_hash = domain.secret_hash(secret)
    row = await locked_row(conn, secret_hash)
    if row is None:
        return OAuthError("invalid_grant", unknown)
    return secret_hash, row
