"""Password sign-in (throttled), the sign-in form's CSRF token and single sign-on browser sessions."""

from __future__ import annotations

import logging
from dataclasses import fields
from datetime import timedelta
from uuid import uuid4

from unified_identity import domain, guard_store, session_store, store
from unified_identity.base import Base
from unified_identity.results import (
    AuthorizeRequest,
    BrowserSession,
    SignedIn,
    SignInFailed,
    SignInThrottled,
)

log = logging.getLogger(__name__)


class SignInCommands(Base):
    # -- sign-in -----------------------------------------------------------------------------------------------
    async def sign_in(self, email: str, password: str, *, address: str, client_id: str | None = None) -> SignedIn:
        """Check the password, throttled per e-mail and address, per address, per e-mail and per client across
        every process (failures live in PostgreSQL). ``address``: where the attempt comes from."""
        key = email.strip().lower()[:320]
        now = self.clock()
        limits = self.signin_limits
        outcome: SignedIn | Exception
        async with self.pool.acquire() as conn, conn.transaction():
            await guard_store.lock_signin(conn, key, address)
            window = max(p.window for p in (limits.per_email_and_address, limits.per_address, limits.per_email))
            await guard_store.forget_failures_before(conn, now - max(window, limits.per_client.window))
            counted = [
                (await guard_store.failures(conn, now - p.window, **criteria), p)
                for criteria, p in (
                    ({"email": key, "address": address}, limits.per_email_and_address),
                    ({"address": address}, limits.per_address),
                    ({"email": key}, limits.per_email),
                    ({"client_id": client_id}, limits.per_client),
                )
                if client_id is not None or p is not limits.per_client
            ]
            wait = domain.longest_wait(counted, now)
            if wait is not None:
                outcome = SignInThrottled(wait)
            else:
                user = await store.user_by_email(conn, key)
                ok = await self.passwords.verify(user["password_hash"] if user else None, password)
                member = await store.membership_of_user(conn, user["user_id"]) if ok and user else None
                if member is None or user is None:
                    await guard_store.add_failure(conn, key, address, client_id, now)
                    outcome = SignInFailed()
                else:
                    await guard_store.clear_failures(conn, key, address)
                    if self.passwords.needs_rehash(user["password_hash"]):
                        new_hash = await self.passwords.hash(password)
                        await store.set_password(conn, user["user_id"], new_hash, email_verified=False)
                    outcome = SignedIn(user["user_id"], member["account_id"], now)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    # -- the sign-in form's CSRF token ---------------------------------------------------------------------------
    @property
    def csrf_key(self) -> bytes:
        assert self._csrf_key is not None, "Identity.start() loads the CSRF key"
        return self._csrf_key

    def csrf_token(self, browser_cookie: str, *, purpose: bytes = domain.SIGN_IN_FORM) -> str:
        return domain.csrf_token(self.csrf_key, browser_cookie, int(self.clock().timestamp()), purpose=purpose)

    def csrf_ok(self, browser_cookie: str | None, token: str | None, *, purpose: bytes = domain.SIGN_IN_FORM) -> bool:
        return domain.csrf_token_ok(
            self.csrf_key,
            browser_cookie,
            token,
            now=int(self.clock().timestamp()),
            ttl_s=self.settings.csrf_token_ttl_s,
            purpose=purpose,
        )

    # -- single sign-on (browser sessions) -----------------------------------------------------------------------
    async def browser_session(self, cookie: str | None) -> BrowserSession | None:
        """The live browser session the cookie names (None: no cookie, unknown, revoked, expired, not a member)."""
        if not domain.looks_like_secret(cookie):
            return None
        assert cookie is not None
        async with self.pool.acquire() as conn:
            row = await session_store.live_browser_session(conn, domain.secret_hash(cookie), self.clock())
        if row is None:
            return None
        return BrowserSession(**{f.name: row[f.name] for f in fields(BrowserSession)})

    def sso_outcome(self, request: AuthorizeRequest, session: BrowserSession | None) -> domain.SsoOutcome:
        return domain.sso_outcome(
            prompt=request.prompt,
            max_age=request.max_age,
            login_hint=request.login_hint,
            session_auth_time=session.auth_time if session else None,
            session_email=session.email if session else None,
            now=self.clock(),
        )

    async def open_browser_session(self, signed_in: SignedIn, *, replacing: str | None) -> tuple[str, SignedIn]:
        """After a password sign-in: a new browser session (a new cookie value, never the old one: no session
        fixation); the one the browser had before, whoever it belonged to, ends. Returns (cookie, signed_in)."""
        cookie = domain.new_secret()
        browser_session_id = uuid4()
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            if domain.looks_like_secret(replacing):
                assert replacing is not None
                old = await session_store.browser_session_id_by_token(conn, domain.secret_hash(replacing))
                if old is not None:
                    # Only the SSO session ends; the tokens its apps already hold stay valid until signed out.
                    await session_store.revoke_browser_session(
                        conn, old, now, session_store.REPLACED, client_sessions=False
                    )
            await session_store.insert_browser_session(
                conn,
                browser_session_id=browser_session_id,
                token_hash=domain.secret_hash(cookie),
                user_id=signed_in.user_id,
                account_id=signed_in.account_id,
                auth_time=signed_in.auth_time,
                created_at=now,
                expires_at=now + timedelta(seconds=self.settings.sso_session_ttl_s),
            )
        return cookie, SignedIn(signed_in.user_id, signed_in.account_id, signed_in.auth_time, browser_session_id)
