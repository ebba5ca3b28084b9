"""Ending sessions (revocation, end-session), userinfo."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import asyncpg
import jwt

from unified_identity import domain, keys, session_store, store
from unified_identity.domain import OAuthError
from unified_identity.results import SignedOut, UserInfo, access_of
from unified_identity.signin import SignInCommands
from unified_identity.tokens import Tokens
from unified_shared.auth import Principal

log = logging.getLogger(__name__)


class Sessions(Tokens, SignInCommands):
    # -- revocation, end-session, userinfo ---------------------------------------------------------------------
    async def _verify_own(self, conn: asyncpg.Connection, token: str, *, audience: str | None) -> dict[str, Any] | None:
        """Claims of a token this service signed (expiry not checked: it is only used to find the session)."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            published = await keys.jwks(conn, now=self.clock(), grace=self.key_grace)
            jwk = next((k for k in published["keys"] if k["kid"] == kid), None)
            if jwk is None:
                return None
            claims: dict[str, Any] = jwt.decode(
                token,
                key=jwt.PyJWK.from_dict(jwk).key,
                algorithms=[keys.ALG],
                issuer=self.settings.issuer,
                audience=audience,
                options={"verify_exp": False, "verify_aud": audience is not None},
            )
            return claims
        except jwt.PyJWTError:
            return None

    async def revoke(self, form: dict[str, str], authorization: str | None) -> None:
        """RFC 7009: revoke the session (refresh family) behind a refresh or access token of this client.

        An unknown or foreign token is answered 200 like any other, as the RFC asks."""
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is required")
        now = self.clock()
        async with self.pool.acquire() as conn:
            client = await self.authenticate_client(conn, form, authorization)
            async with conn.transaction():
                row = await session_store.refresh_for_update(conn, domain.secret_hash(token))
                if row is not None:
                    if row["client_id"] == client.client_id:
                        await self._revoke_session(conn, row["session_id"], now, "revoked by client")
                else:
                    claims = await self._verify_own(conn, token, audience=self.settings.token_audience)
                    if claims and claims.get("client_id") == client.client_id and claims.get("sid"):
                        await self._revoke_session(conn, UUID(claims["sid"]), now, "revoked by client")
        self.runtime.notify_relay()

    async def end_session(
        self,
        *,
        id_token_hint: str | None,
        post_logout_redirect_uri: str | None,
        client_id: str | None,
        browser_cookie: str | None,
        confirmed: bool = False,
    ) -> SignedOut:
        """OIDC RP-initiated logout: end the session named by the ID token, the browser session (single sign-on)
        it was signed in through, and, when the ID token is the cookie's user's or the user confirmed on the
        sign-out page (``confirmed``: a POST with a valid CSRF token), the browser session of the cookie, with
        every refresh-token family born from them. A request without such a hint ends nothing of the cookie's
        session: any site can make a browser send a GET here (SameSite=Lax), so it only asks for confirmation
        (logout CSRF). A bad ``id_token_hint`` or ``client_id`` is refused before anything ends; an
        unregistered ``post_logout_redirect_uri`` is refused after the sign-out (the user asked to leave)."""
        now = self.clock()
        async with self.pool.acquire() as conn:
            claims = await self._verify_own(conn, id_token_hint, audience=None) if id_token_hint else None
            if id_token_hint and claims is None:
                raise OAuthError("invalid_request", "id_token_hint is not an ID token issued here")
            audience = str(claims["aud"]) if claims else client_id
            if claims and client_id and client_id != audience:
                raise OAuthError("invalid_request", "client_id does not match the ID token's audience")
            cookie_session = await self.browser_session(browser_cookie)
            ends_cookie = confirmed or (
                claims is not None and cookie_session is not None and claims.get("sub") == str(cookie_session.user_id)
            )
            if claims is None and cookie_session is not None and not ends_cookie:
                return SignedOut(None, clear_cookie=False, confirm=cookie_session)
            async with conn.transaction():
                ended: set[UUID] = set()
                if claims and claims.get("sid"):
                    sid = UUID(claims["sid"])
                    await self._revoke_session(conn, sid, now, "signed out")
                    session = await session_store.session(conn, sid)
                    if session is not None and session["browser_session_id"] is not None:
                        ended.add(session["browser_session_id"])
                if ends_cookie and domain.looks_like_secret(browser_cookie):
                    assert browser_cookie is not None
                    found = await session_store.browser_session_id_by_token(conn, domain.secret_hash(browser_cookie))
                    if found is not None:
                        ended.add(found)
                for ended_id in sorted(ended):
                    ended_sessions = await session_store.revoke_browser_session(
                        conn, ended_id, now, "signed out", client_sessions=True
                    )
                    await self._end_sessions(conn, ended_sessions, "signed out", now)
            self.runtime.notify_relay()
            # Someone else's ID token (another user signed in to the app) leaves this browser's session alone.
            clear_cookie = ends_cookie or cookie_session is None
            if not post_logout_redirect_uri:
                return SignedOut(None, clear_cookie=clear_cookie)
            client = await store.client(conn, audience) if audience else None
            if client is None or not domain.redirect_uri_registered(
                post_logout_redirect_uri, client["post_logout_redirect_uris"]
            ):
                refused = OAuthError("invalid_request", "post_logout_redirect_uri is not registered for this client")
                return SignedOut(None, refused, clear_cookie=clear_cookie)
            return SignedOut(post_logout_redirect_uri, clear_cookie=clear_cookie)

    async def session_refusal(self, claims: dict[str, Any]) -> str | None:
        """Identity's own check of every token it is shown (DESIGN 11): its session must be live and its user
        still a member of its account, read from the database itself, so nothing waits for the topic. (The
        commands read the caller's membership as it is now, so a changed role needs no check here.)"""
        try:
            sid, sub, account = UUID(str(claims["sid"])), UUID(str(claims["sub"])), UUID(str(claims["account_id"]))
        except (KeyError, ValueError):
            return "the token names no valid session"
        async with self.pool.acquire() as conn:
            row = await session_store.session_standing(conn, sid)
        if row is None or row["user_id"] != sub or row["account_id"] != account:
            return "the token names no valid session"
        if row["revoked_at"] is not None:
            return "the session of this token has ended"
        if not row["member"]:
            return "the membership this token was issued for has ended"
        return None

    async def userinfo(self, principal: Principal) -> UserInfo:
        async with self.pool.acquire() as conn:
            sid = principal.claims.get("sid")
            if sid:
                session = await session_store.session(conn, UUID(str(sid)))
                if session is None or session["revoked_at"] is not None:
                    raise domain.Unauthorized(None, "the session of this token has ended")
            member = await store.membership(conn, principal.account_id, principal.user_id)
        if member is None:
            raise domain.NotFound(None, "no such user")
        return UserInfo(
            user_id=principal.user_id,
            account_name=member["legal_name"],
            **{f: member[f] for f in ("email", "email_verified", "name", "account_id")},
            **access_of(member),
        )
