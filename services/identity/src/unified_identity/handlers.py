"""Commands of the identity service: each is one transaction over its own tables plus, where the fact is
public, an event appended to the account's stream (the outbox). OAuth errors are returned as values inside
a transaction and raised after it commits, so what must be remembered (a used code, a revoked family, a
failed sign-in) is remembered even though the caller gets an error."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote
from uuid import UUID, uuid4

import asyncpg
import jwt

from unified_identity import domain, keys, mail, store
from unified_identity.passwords import Passwords, common_passwords
from unified_identity.settings import Settings
from unified_shared import eventstore
from unified_shared.auth import Principal
from unified_shared.contracts.identity import (
    AccountRegistered,
    InvitationAccepted,
    InvitationRevoked,
    MemberRemoved,
    MemberRoleChanged,
    UserInvited,
)
from unified_shared.events import Event
from unified_shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def stream_id(account_id: UUID) -> str:
    return f"account-{account_id}"


class OAuthError(Exception):
    """An RFC 6749 / OIDC error: ``{"error": ..., "error_description": ...}``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


class SignInFailed(Exception):
    """Unknown email or wrong password: deliberately one answer for both."""


class SignInThrottled(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed sign-ins; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    """The validated parameters of an authorization request (PKCE S256 only)."""

    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    nonce: str | None
    code_challenge: str
    prompt: frozenset[str] = frozenset()
    max_age: int | None = None
    login_hint: str | None = None


@dataclass(frozen=True, slots=True)
class SignedIn:
    user_id: UUID
    account_id: UUID
    auth_time: datetime
    browser_session_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """A live single sign-on session, as named by the browser's cookie."""

    browser_session_id: UUID
    user_id: UUID
    account_id: UUID
    email: str
    auth_time: datetime
    expires_at: datetime

    def signed_in(self) -> SignedIn:
        return SignedIn(self.user_id, self.account_id, self.auth_time, self.browser_session_id)


@dataclass(frozen=True, slots=True)
class SignedOut:
    """End-session's outcome. ``confirm``: nothing was ended, the browser's signed-in user must confirm first
    (no ID token of theirs came with the request). Else the sessions are ended; ``refused`` if the post-logout
    URI is not followed; ``clear_cookie`` unless the cookie names a live session that was left alone."""

    redirect_to: str | None
    refused: OAuthError | None = None
    clear_cookie: bool = True
    confirm: BrowserSession | None = None


CSRF_SECRET_NAME = "sign-in-form-csrf"


class Identity:
    """The service's command handlers, bound to its runtime (pool, relay) and settings."""

    def __init__(self, runtime: ServiceRuntime, settings: Settings) -> None:
        self.runtime = runtime
        self.settings = settings
        self.passwords = Passwords(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self.throttle = domain.ThrottlePolicy(settings.signin_max_failures, timedelta(seconds=settings.signin_window_s))
        self.key_grace = timedelta(seconds=settings.key_publish_grace_s)
        self._csrf_key: bytes | None = settings.csrf_secret.encode() if settings.csrf_secret else None

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.pool

    async def start(self) -> None:
        """Make sure a signing key and the default public client exist (idempotent, any number of processes)."""
        s = self.settings
        async with self.pool.acquire() as conn:
            await keys.ensure_active(conn)
            if self._csrf_key is None:
                self._csrf_key = await store.server_secret(conn, CSRF_SECRET_NAME, secrets.token_bytes(32))
            await store.upsert_client(
                conn,
                client_id=s.cli_client_id,
                name="unified-seller CLI",
                redirect_uris=s.cli_redirect_uri_list,
                post_logout_redirect_uris=s.cli_post_logout_uri_list,
                secret_hash=None,
            )

    async def _append(self, conn: asyncpg.Connection, account_id: UUID, event: Event) -> None:
        sid = stream_id(account_id)
        version = await eventstore.stream_version(conn, sid)
        await eventstore.append(conn, sid, version, [event])

    # -- accounts ----------------------------------------------------------------------------------------------
    async def register_account(
        self, *, legal_name: str, home_marketplace: str, email: str, password: str, at: datetime | None = None
    ) -> tuple[UUID, UUID]:
        name = legal_name.strip()
        if not name or len(name) > 200:
            raise domain.Invalid("legal_name must be 1 to 200 characters", field="legal_name")
        marketplace_id = domain.resolve_marketplace(home_marketplace)
        email_norm = domain.normalize_email(email)
        domain.check_password(password, email=email_norm, common=common_passwords())
        password_hash = await self.passwords.hash(password)
        account_id, user_id = uuid4(), uuid4()
        registered_at = at or utcnow()
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                if await store.user_by_email(conn, email_norm) is not None:
                    raise domain.Conflict("an account with this email already exists", field="email")
                await store.insert_account(conn, account_id, name, marketplace_id, registered_at)
                await store.insert_user(conn, user_id, email_norm, password_hash, email_verified=False)
                await store.insert_membership(
                    conn,
                    account_id=account_id,
                    user_id=user_id,
                    role=domain.OWNER,
                    permissions=domain.OWNER_PERMISSIONS,
                    marketplaces="*",
                    joined_at=registered_at,
                )
                event = AccountRegistered(
                    account_id=account_id,
                    legal_name=name,
                    home_marketplace_id=marketplace_id,
                    owner_user_id=user_id,
                    owner_email=email_norm,
                    registered_at=registered_at,
                )
                await eventstore.append(conn, stream_id(account_id), 0, [event], occurred_at=registered_at)
        except asyncpg.UniqueViolationError:
            raise domain.Conflict("an account with this email already exists", field="email") from None
        self.runtime.notify_relay()
        return account_id, user_id

    # -- sign-in -----------------------------------------------------------------------------------------------
    async def sign_in(self, email: str, password: str) -> SignedIn:
        """Check the password, throttled per email across every process (failures live in PostgreSQL)."""
        key = email.strip().lower()[:320]
        now = utcnow()
        outcome: SignedIn | Exception
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_signin(conn, key)
            failures = await store.recent_failures(conn, key, now - self.throttle.window)
            wait = domain.retry_after_s(failures, now, self.throttle)
            if wait is not None:
                outcome = SignInThrottled(wait)
            else:
                user = await store.user_by_email(conn, key)
                ok = await self.passwords.verify(user["password_hash"] if user else None, password)
                member = await store.membership_of_user(conn, user["user_id"]) if ok and user else None
                if member is None or user is None:
                    await store.add_failure(conn, key, now)
                    outcome = SignInFailed()
                else:
                    await store.clear_failures(conn, key)
                    if self.passwords.needs_rehash(user["password_hash"]):
                        new_hash = await self.passwords.hash(password)
                        await store.set_password(conn, user["user_id"], new_hash, email_verified=False)
                    outcome = SignedIn(user["user_id"], member["account_id"], now)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    # -- authorization endpoint --------------------------------------------------------------------------------
    async def client(self, client_id: str | None) -> asyncpg.Record | None:
        if not client_id:
            return None
        async with self.pool.acquire() as conn:
            return await store.client(conn, client_id)

    async def check_client_redirect(self, client_id: str | None, redirect_uri: str | None) -> asyncpg.Record:
        """Errors here must not redirect (RFC 6749 4.1.2.1): the redirect target itself is untrusted."""
        client = await self.client(client_id)
        if client is None:
            raise OAuthError("invalid_client", "unknown client_id")
        if not redirect_uri:
            raise OAuthError("invalid_request", "redirect_uri is required")
        if not domain.redirect_uri_registered(redirect_uri, client["redirect_uris"]):
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

    # -- the sign-in form's CSRF token ---------------------------------------------------------------------------
    @property
    def csrf_key(self) -> bytes:
        assert self._csrf_key is not None, "Identity.start() loads the CSRF key"
        return self._csrf_key

    def csrf_token(self, browser_cookie: str, *, purpose: bytes = domain.SIGN_IN_FORM) -> str:
        return domain.csrf_token(self.csrf_key, browser_cookie, int(utcnow().timestamp()), purpose=purpose)

    def csrf_ok(self, browser_cookie: str | None, token: str | None, *, purpose: bytes = domain.SIGN_IN_FORM) -> bool:
        return domain.csrf_token_ok(
            self.csrf_key,
            browser_cookie,
            token,
            now=int(utcnow().timestamp()),
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
            row = await store.live_browser_session(conn, domain.secret_hash(cookie), utcnow())
        if row is None:
            return None
        return BrowserSession(
            browser_session_id=row["browser_session_id"],
            user_id=row["user_id"],
            account_id=row["account_id"],
            email=row["email"],
            auth_time=row["auth_time"],
            expires_at=row["expires_at"],
        )

    @staticmethod
    def sso_outcome(request: AuthorizeRequest, session: BrowserSession | None) -> domain.SsoOutcome:
        return domain.sso_outcome(
            prompt=request.prompt,
            max_age=request.max_age,
            login_hint=request.login_hint,
            session_auth_time=session.auth_time if session else None,
            session_email=session.email if session else None,
            now=utcnow(),
        )

    async def open_browser_session(self, signed_in: SignedIn, *, replacing: str | None) -> tuple[str, SignedIn]:
        """After a password sign-in: a new browser session (a new cookie value, never the old one: no session
        fixation); the one the browser had before, whoever it belonged to, ends. Returns (cookie, signed_in)."""
        cookie = domain.new_secret()
        browser_session_id = uuid4()
        now = utcnow()
        async with self.pool.acquire() as conn, conn.transaction():
            if domain.looks_like_secret(replacing):
                assert replacing is not None
                old = await store.browser_session_id_by_token(conn, domain.secret_hash(replacing))
                if old is not None:
                    # Only the SSO session ends; the tokens its apps already hold stay valid until signed out.
                    await store.revoke_browser_session(conn, old, now, store.REPLACED, client_sessions=False)
            await store.insert_browser_session(
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

    async def create_code(self, request: AuthorizeRequest, signed_in: SignedIn) -> str:
        code = domain.new_secret()
        async with self.pool.acquire() as conn:
            await store.insert_code(
                conn,
                code_hash=domain.secret_hash(code),
                client_id=request.client_id,
                user_id=signed_in.user_id,
                account_id=signed_in.account_id,
                redirect_uri=request.redirect_uri,
                scope=request.scope,
                nonce=request.nonce,
                code_challenge=request.code_challenge,
                auth_time=signed_in.auth_time,
                expires_at=utcnow() + timedelta(seconds=self.settings.authorization_code_ttl_s),
                browser_session_id=signed_in.browser_session_id,
            )
        return code

    # -- token endpoint ----------------------------------------------------------------------------------------
    async def authenticate_client(
        self, conn: asyncpg.Connection, form: dict[str, str], authorization: str | None
    ) -> asyncpg.Record:
        """Public clients name themselves; confidential ones prove it (client_secret_basic or _post)."""
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                raw = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
            basic_id, _, basic_secret = raw.partition(":")
            client_id, secret = unquote(basic_id), unquote(basic_secret)
        if not client_id:
            raise OAuthError("invalid_client", "client_id is required", 401)
        client = await store.client(conn, client_id)
        if client is None:
            raise OAuthError("invalid_client", "unknown client", 401)
        stored = client["secret_hash"]
        if stored is not None and (not secret or not hmac.compare_digest(domain.secret_hash(secret), bytes(stored))):
            raise OAuthError("invalid_client", "client authentication failed", 401)
        return client

    async def token(self, form: dict[str, str], authorization: str | None) -> dict[str, Any]:
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
        if isinstance(outcome, OAuthError):
            raise outcome
        return outcome

    async def _exchange_code(
        self, conn: asyncpg.Connection, client: asyncpg.Record, form: dict[str, str]
    ) -> dict[str, Any] | OAuthError:
        code = form.get("code")
        if not code:
            return OAuthError("invalid_request", "code is required")
        code_hash = domain.secret_hash(code)
        row = await store.code_for_update(conn, code_hash)
        now = utcnow()
        if row is None:
            return OAuthError("invalid_grant", "unknown authorization code")
        if row["used_at"] is not None:
            # RFC 6749 4.1.2: a code used twice revokes what it was exchanged for.
            if row["session_id"] is not None:
                await store.revoke_session(conn, row["session_id"], now, "authorization code reused")
            return OAuthError("invalid_grant", "authorization code already used")
        await store.mark_code_used(conn, code_hash, now, None)  # burnt even if a check below fails
        if row["client_id"] != client["client_id"]:
            return OAuthError("invalid_grant", "authorization code was issued to another client")
        if row["expires_at"] <= now:
            return OAuthError("invalid_grant", "authorization code expired")
        if form.get("redirect_uri") != row["redirect_uri"]:
            return OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
        if not domain.pkce_ok(form.get("code_verifier"), row["code_challenge"]):
            return OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        if row["browser_session_id"] is not None and await store.browser_session_ended(conn, row["browser_session_id"]):
            return OAuthError("invalid_grant", "the user signed out after this code was issued")
        session_id = uuid4()
        await store.insert_session(
            conn,
            session_id=session_id,
            user_id=row["user_id"],
            account_id=row["account_id"],
            client_id=row["client_id"],
            scope=row["scope"],
            auth_time=row["auth_time"],
            browser_session_id=row["browser_session_id"],
        )
        await store.mark_code_used(conn, code_hash, now, session_id)
        return await self._issue(
            conn,
            session_id=session_id,
            user_id=row["user_id"],
            account_id=row["account_id"],
            client_id=row["client_id"],
            scope=row["scope"],
            auth_time=row["auth_time"],
            nonce=row["nonce"],
            now=now,
        )

    async def _refresh(
        self, conn: asyncpg.Connection, client: asyncpg.Record, form: dict[str, str]
    ) -> dict[str, Any] | OAuthError:
        token = form.get("refresh_token")
        if not token:
            return OAuthError("invalid_request", "refresh_token is required")
        token_hash = domain.secret_hash(token)
        row = await store.refresh_for_update(conn, token_hash)
        now = utcnow()
        if row is None:
            return OAuthError("invalid_grant", "unknown refresh token")
        if row["client_id"] != client["client_id"]:
            return OAuthError("invalid_grant", "refresh token was issued to another client")
        if row["revoked_at"] is not None:
            return OAuthError("invalid_grant", "refresh token revoked")
        if row["used_at"] is not None:
            # A rotated token came back: someone holds a copy. Revoke the whole family (the session).
            await store.revoke_session(conn, row["session_id"], now, "refresh token reused")
            log.warning("refresh token reuse; session revoked", extra={"session_id": str(row["session_id"])})
            return OAuthError("invalid_grant", "refresh token already used; the session is revoked")
        if row["expires_at"] <= now:
            return OAuthError("invalid_grant", "refresh token expired")
        await store.mark_refresh_used(conn, token_hash, now)
        return await self._issue(
            conn,
            session_id=row["session_id"],
            user_id=row["user_id"],
            account_id=row["account_id"],
            client_id=row["client_id"],
            scope=row["scope"],
            auth_time=row["auth_time"],
            nonce=None,
            now=now,
        )

    async def _issue(
        self,
        conn: asyncpg.Connection,
        *,
        session_id: UUID,
        user_id: UUID,
        account_id: UUID,
        client_id: str,
        scope: str,
        auth_time: datetime,
        nonce: str | None,
        now: datetime,
    ) -> dict[str, Any] | OAuthError:
        """Access token (+ ID token for openid) from the membership as it is now, and a new refresh token."""
        member = await store.membership(conn, account_id, user_id)
        if member is None:
            await store.revoke_session(conn, session_id, now, "membership ended")
            return OAuthError("invalid_grant", "the user is no longer a member of the account")
        s = self.settings
        key = await keys.active(conn)
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
        response: dict[str, Any] = {
            "access_token": key.sign(access_claims, typ="at+jwt"),
            "token_type": "Bearer",
            "expires_in": s.access_token_ttl_s,
            "scope": scope,
        }
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
            response["id_token"] = key.sign(id_claims)
        refresh = domain.new_secret()
        await store.insert_refresh(
            conn, domain.secret_hash(refresh), session_id, now, now + timedelta(seconds=s.refresh_token_ttl_s)
        )
        response["refresh_token"] = refresh
        return response

    # -- revocation, end-session, userinfo ---------------------------------------------------------------------
    async def _verify_own(self, conn: asyncpg.Connection, token: str, *, audience: str | None) -> dict[str, Any] | None:
        """Claims of a token this service signed (expiry not checked: it is only used to find the session)."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            published = await keys.jwks(conn, now=utcnow(), grace=self.key_grace)
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
        now = utcnow()
        async with self.pool.acquire() as conn:
            client = await self.authenticate_client(conn, form, authorization)
            async with conn.transaction():
                row = await store.refresh_for_update(conn, domain.secret_hash(token))
                if row is not None:
                    if row["client_id"] == client["client_id"]:
                        await store.revoke_session(conn, row["session_id"], now, "revoked by client")
                    return
                claims = await self._verify_own(conn, token, audience=self.settings.token_audience)
                if claims and claims.get("client_id") == client["client_id"] and claims.get("sid"):
                    await store.revoke_session(conn, UUID(claims["sid"]), now, "revoked by client")

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
        now = utcnow()
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
                    await store.revoke_session(conn, sid, now, "signed out")
                    session = await store.session(conn, sid)
                    if session is not None and session["browser_session_id"] is not None:
                        ended.add(session["browser_session_id"])
                if ends_cookie and domain.looks_like_secret(browser_cookie):
                    assert browser_cookie is not None
                    found = await store.browser_session_id_by_token(conn, domain.secret_hash(browser_cookie))
                    if found is not None:
                        ended.add(found)
                for ended_id in sorted(ended):
                    await store.revoke_browser_session(conn, ended_id, now, "signed out", client_sessions=True)
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

    async def userinfo(self, principal: Principal) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            sid = principal.claims.get("sid")
            if sid:
                session = await store.session(conn, UUID(str(sid)))
                if session is None or session["revoked_at"] is not None:
                    raise domain.Unauthenticated("the session of this token has ended")
            member = await store.membership(conn, principal.account_id, principal.user_id)
        if member is None:
            raise domain.NotFound("no such user")
        return {
            "sub": str(principal.user_id),
            "email": member["email"],
            "email_verified": member["email_verified"],
            "account_id": str(member["account_id"]),
            "account_name": member["legal_name"],
            "role": member["role"],
            "permissions": domain.token_permissions(member["role"], member["permissions"]),
            "marketplaces": member["marketplaces"],
        }

    # -- team: invitations and members -------------------------------------------------------------------------
    async def _actor(self, conn: asyncpg.Connection, principal: Principal, account_id: UUID) -> asyncpg.Record:
        """The caller's membership as it is now (not as the token says), and the right to manage users."""
        principal.require_account(account_id)
        actor = await store.membership(conn, account_id, principal.user_id)
        if actor is None:
            raise domain.NotFound("no such account")
        domain.check_can_manage(actor["role"])
        return actor

    async def invite(
        self,
        principal: Principal,
        account_id: UUID,
        *,
        email: str,
        role: str,
        permissions: list[str],
        marketplaces: str | list[str],
    ) -> tuple[UUID, datetime]:
        domain.check_invitable_role(role)
        perms = domain.check_permissions(permissions)
        scope = domain.resolve_scope(marketplaces)
        email_norm = domain.normalize_email(email)
        token = domain.new_secret()
        invitation_id = uuid4()
        now = utcnow()
        expires_at = now + timedelta(seconds=self.settings.invitation_ttl_s)
        async with self.pool.acquire() as conn, conn.transaction():
            account = await store.lock_account(conn, account_id)
            actor = await self._actor(conn, principal, account_id)
            assert account is not None
            domain.check_may_invite(grant_of(actor), domain.Grant.of(role, perms, scope))
            existing = await store.user_by_email(conn, email_norm)
            if existing is not None and await store.membership_of_user(conn, existing["user_id"]) is not None:
                raise domain.Conflict("this email already belongs to a member of an account", field="email")
            await store.insert_invitation(
                conn,
                invitation_id=invitation_id,
                account_id=account_id,
                email=email_norm,
                role=role,
                permissions=perms,
                marketplaces=scope,
                token_hash=domain.secret_hash(token),
                invited_by=principal.user_id,
                created_at=now,
                expires_at=expires_at,
            )
            await self._append(
                conn,
                account_id,
                UserInvited(
                    account_id=account_id,
                    invitation_id=invitation_id,
                    email=email_norm,
                    role=role,  # type: ignore[arg-type]
                    **domain.event_permissions(perms),  # type: ignore[arg-type]
                    marketplace_scope=scope,
                    invited_by=principal.user_id,
                    expires_at=expires_at,
                ),
            )
            # Sent before commit: if the mail server refuses, nothing was created and the caller may retry.
            # The token exists only in this mail; the database keeps its hash.
            message = mail.invitation_message(
                sender=self.settings.mail_from,
                to=email_norm,
                account_name=account["legal_name"],
                role=role,
                link=f"{self.settings.issuer}/invitations/accept?token={token}",
                expires_at=expires_at,
            )
            try:
                await mail.send(self.settings, message)
            except mail.MailError as exc:
                raise domain.Unavailable(f"the invitation mail could not be sent: {exc}") from None
        self.runtime.notify_relay()
        return invitation_id, expires_at

    async def revoke_invitation(self, principal: Principal, account_id: UUID, invitation_id: UUID) -> None:
        now = utcnow()
        async with self.pool.acquire() as conn, conn.transaction():
            if await store.lock_account(conn, account_id) is None:
                raise domain.NotFound("no such account")
            actor = await self._actor(conn, principal, account_id)
            invitation = await store.invitation(conn, account_id, invitation_id)
            if invitation is None:
                raise domain.NotFound("no such invitation")
            domain.check_may_revoke_invitation(grant_of(actor), invitation["role"])
            if invitation["accepted_at"] is not None:
                raise domain.Conflict("the invitation was already accepted; remove the member instead")
            if invitation["revoked_at"] is not None:
                return  # already revoked: nothing new happened
            await self._revoke_invitation_row(conn, invitation, revoked_by=principal.user_id, at=now)
        self.runtime.notify_relay()

    async def accept_invitation(self, token: str, password: str) -> tuple[UUID, UUID]:
        """Single use: the row is locked, checked and marked in one transaction. The inviter's authority is
        checked again, as it is now: an invitation from someone since removed, or offering more than its sender
        may grant today, is revoked (and the revocation published) instead of accepted."""
        now = utcnow()
        token_hash = domain.secret_hash(token)
        lapsed: domain.DomainError | None = None
        user_id: UUID | None = None
        async with self.pool.acquire() as conn, conn.transaction():
            # The account first, then the invitation: the lock order of every team command.
            account_id = await store.invitation_account_by_token(conn, token_hash)
            if account_id is None:
                raise domain.NotFound("no such invitation")
            await store.lock_account(conn, account_id)
            invitation = await store.invitation_by_token(conn, token_hash)
            if invitation is None:
                raise domain.NotFound("no such invitation")
            if invitation["revoked_at"] is not None:
                raise domain.Gone("this invitation was revoked")
            if invitation["accepted_at"] is not None:
                raise domain.Gone("this invitation was already used")
            if invitation["expires_at"] <= now:
                raise domain.Gone("this invitation has expired")
            inviter = await store.membership(conn, account_id, invitation["invited_by"])
            lapsed = domain.inviter_refusal(grant_of(inviter) if inviter else None, grant_of(invitation))
            if lapsed is not None:
                # Remembered and published although the caller gets an error: the transaction commits.
                await self._revoke_invitation_row(conn, invitation, revoked_by=invitation["invited_by"], at=now)
            else:
                user_id = await self._join(conn, invitation, password, now)
        self.runtime.notify_relay()
        if lapsed is not None:
            raise lapsed
        assert user_id is not None
        return account_id, user_id

    async def _join(self, conn: asyncpg.Connection, invitation: asyncpg.Record, password: str, now: datetime) -> UUID:
        """The invited person becomes a member (a new user, or an existing user without a membership)."""
        email = invitation["email"]
        account_id = invitation["account_id"]
        domain.check_password(password, email=email, common=common_passwords())
        password_hash = await self.passwords.hash(password)
        user = await store.user_by_email(conn, email, for_update=True)
        if user is not None:
            if await store.membership_of_user(conn, user["user_id"]) is not None:
                raise domain.Conflict("this email already belongs to a member of an account")
            user_id: UUID = user["user_id"]
            await store.set_password(conn, user_id, password_hash, email_verified=True)
        else:
            user_id = uuid4()
            await store.insert_user(conn, user_id, email, password_hash, email_verified=True)
        scope = invitation["marketplaces"]
        await store.insert_membership(
            conn,
            account_id=account_id,
            user_id=user_id,
            role=invitation["role"],
            permissions=invitation["permissions"],
            marketplaces=scope,
            joined_at=now,
        )
        await store.mark_invitation_accepted(conn, invitation["invitation_id"], user_id, now)
        await self._append(
            conn,
            account_id,
            InvitationAccepted(
                account_id=account_id,
                invitation_id=invitation["invitation_id"],
                user_id=user_id,
                email=email,
                role=invitation["role"],
                **domain.event_permissions(invitation["permissions"]),  # type: ignore[arg-type]
                marketplace_scope=scope,
                accepted_at=now,
            ),
        )
        return user_id

    async def _revoke_invitation_row(
        self, conn: asyncpg.Connection, invitation: asyncpg.Record, *, revoked_by: UUID, at: datetime
    ) -> None:
        await store.mark_invitation_revoked(conn, invitation["invitation_id"], at)
        account_id = invitation["account_id"]
        await self._append(
            conn,
            account_id,
            InvitationRevoked(
                account_id=account_id, invitation_id=invitation["invitation_id"], revoked_by=revoked_by, revoked_at=at
            ),
        )

    async def _revoke_invitations_sent_by(
        self,
        conn: asyncpg.Connection,
        account_id: UUID,
        sender: UUID,
        sender_now: domain.Grant | None,
        *,
        revoked_by: UUID,
        at: datetime,
    ) -> None:
        """After a member's removal (``sender_now`` None) or change: the pending invitations it sent that it
        could not send any more are revoked, each published as InvitationRevoked."""
        for invitation in await store.pending_invitations_sent_by(conn, account_id, sender, at):
            if domain.inviter_refusal(sender_now, grant_of(invitation)) is not None:
                await self._revoke_invitation_row(conn, invitation, revoked_by=revoked_by, at=at)

    async def members(self, principal: Principal, account_id: UUID) -> dict[str, Any]:
        now = utcnow()
        async with self.pool.acquire() as conn:
            await self._actor(conn, principal, account_id)
            rows = await store.members(conn, account_id)
            pending = await store.pending_invitations(conn, account_id, now)
        return {
            "account_id": str(account_id),
            "members": [member_view(r) for r in rows],
            "invitations": [
                {
                    "invitation_id": str(i["invitation_id"]),
                    "email": i["email"],
                    "role": i["role"],
                    "permissions": list(i["permissions"]),
                    "marketplaces": i["marketplaces"],
                    "invited_by": str(i["invited_by"]),
                    "created_at": i["created_at"].isoformat(),
                    "expires_at": i["expires_at"].isoformat(),
                }
                for i in pending
            ],
        }

    async def change_member(
        self,
        principal: Principal,
        account_id: UUID,
        user_id: UUID,
        *,
        role: str | None,
        permissions: list[str] | None,
        marketplaces: str | list[str] | None,
    ) -> dict[str, Any]:
        now = utcnow()
        async with self.pool.acquire() as conn, conn.transaction():
            if await store.lock_account(conn, account_id) is None:
                raise domain.NotFound("no such account")
            actor = await self._actor(conn, principal, account_id)
            target = await store.membership(conn, account_id, user_id)
            if target is None:
                raise domain.NotFound("no such member")
            domain.check_change_target(target["role"])
            new_role = target["role"] if role is None else role
            domain.check_invitable_role(new_role)
            perms = domain.check_permissions(target["permissions"] if permissions is None else permissions)
            scope = target["marketplaces"] if marketplaces is None else domain.resolve_scope(marketplaces)
            domain.check_may_change(
                grant_of(actor),
                grant_of(target),
                domain.Grant.of(new_role, perms, scope),
                is_self=user_id == principal.user_id,
            )
            await store.update_membership(
                conn, account_id=account_id, user_id=user_id, role=new_role, permissions=perms, marketplaces=scope
            )
            await self._append(
                conn,
                account_id,
                MemberRoleChanged(
                    account_id=account_id,
                    user_id=user_id,
                    role=new_role,  # type: ignore[arg-type]
                    **domain.event_permissions(perms),  # type: ignore[arg-type]
                    marketplace_scope=scope,
                    changed_by=principal.user_id,
                    changed_at=now,
                ),
            )
            # A demoted admin's invitations (or those now beyond its narrower grant) go with its authority.
            await self._revoke_invitations_sent_by(
                conn,
                account_id,
                user_id,
                domain.Grant.of(new_role, perms, scope),
                revoked_by=principal.user_id,
                at=now,
            )
            updated = await store.membership(conn, account_id, user_id)
        self.runtime.notify_relay()
        assert updated is not None
        return member_view(updated)

    async def remove_member(self, principal: Principal, account_id: UUID, user_id: UUID) -> None:
        now = utcnow()
        async with self.pool.acquire() as conn, conn.transaction():
            if await store.lock_account(conn, account_id) is None:
                raise domain.NotFound("no such account")
            actor = await self._actor(conn, principal, account_id)
            target = await store.membership(conn, account_id, user_id)
            if target is None:
                raise domain.NotFound("no such member")
            domain.check_may_remove(grant_of(actor), target["role"], is_self=user_id == principal.user_id)
            await store.delete_membership(conn, account_id, user_id)
            await store.revoke_user_sessions(conn, user_id, now, "removed from the account")
            await store.revoke_user_browser_sessions(conn, user_id, now, "removed from the account")
            await self._revoke_invitations_sent_by(
                conn, account_id, user_id, None, revoked_by=principal.user_id, at=now
            )
            await self._append(
                conn,
                account_id,
                MemberRemoved(account_id=account_id, user_id=user_id, removed_by=principal.user_id, removed_at=now),
            )
        self.runtime.notify_relay()


def grant_of(membership: asyncpg.Record) -> domain.Grant:
    """A membership or invitation row as the domain's Grant (read from the database, not from a token)."""
    return domain.Grant.of(membership["role"], membership["permissions"], membership["marketplaces"])


def member_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "user_id": str(row["user_id"]),
        "email": row["email"],
        "role": row["role"],
        "permissions": domain.token_permissions(row["role"], row["permissions"]),
        "marketplaces": row["marketplaces"],
        "joined_at": row["joined_at"].isoformat(),
    }
