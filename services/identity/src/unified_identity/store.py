"""SQL (asyncpg) for the identity service's own tables. Every function runs on the caller's connection, so
the handler decides the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

Row: TypeAlias = asyncpg.Record


# -- accounts, users, memberships ------------------------------------------------------------------------------
async def insert_account(
    conn: asyncpg.Connection, account_id: UUID, legal_name: str, home_marketplace_id: str, registered_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO accounts (account_id, legal_name, home_marketplace_id, registered_at) VALUES ($1, $2, $3, $4)",
        account_id,
        legal_name,
        home_marketplace_id,
        registered_at,
    )


async def lock_account(conn: asyncpg.Connection, account_id: UUID) -> Row | None:
    """Serialises the commands of one account (and so the versions of its event stream)."""
    return await conn.fetchrow("SELECT * FROM accounts WHERE account_id = $1 FOR UPDATE", account_id)


async def account(conn: asyncpg.Connection, account_id: UUID) -> Row | None:
    return await conn.fetchrow("SELECT * FROM accounts WHERE account_id = $1", account_id)


async def insert_user(
    conn: asyncpg.Connection,
    user_id: UUID,
    email: str,
    password_hash: str,
    *,
    email_verified: bool,
    name: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO users (user_id, email, password_hash, email_verified, name) VALUES ($1, $2, $3, $4, $5)",
        user_id,
        email,
        password_hash,
        email_verified,
        name,
    )


async def name_user(conn: asyncpg.Connection, user_id: UUID, name: str | None) -> None:
    """The name an invitation carried, unless the user already has one."""
    await conn.execute("UPDATE users SET name = coalesce(name, $2) WHERE user_id = $1", user_id, name)


async def mark_email_verified(conn: asyncpg.Connection, user_id: UUID, email: str) -> bool:
    """Verified only if the address is still the user's (it may have changed since the mail was sent)."""
    status = await conn.execute(
        "UPDATE users SET email_verified = true WHERE user_id = $1 AND email = $2", user_id, email
    )
    return str(status).endswith(" 1")


async def insert_email_verification(
    conn: asyncpg.Connection,
    token_hash: bytes,
    user_id: UUID,
    email: str,
    *,
    created_at: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO email_verifications (token_hash, user_id, email, created_at, expires_at)
           VALUES ($1, $2, $3, $4, $5)""",
        token_hash,
        user_id,
        email,
        created_at,
        expires_at,
    )


async def email_verifications_since(conn: asyncpg.Connection, user_id: UUID, since: datetime) -> int:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('verify:' || $1, 0))", str(user_id))
    value = await conn.fetchval(
        "SELECT count(*) FROM email_verifications WHERE user_id = $1 AND created_at > $2", user_id, since
    )
    return int(value or 0)


async def email_verification_for_update(conn: asyncpg.Connection, token_hash: bytes) -> Row | None:
    return await conn.fetchrow("SELECT * FROM email_verifications WHERE token_hash = $1 FOR UPDATE", token_hash)


async def mark_email_verification_used(conn: asyncpg.Connection, token_hash: bytes, at: datetime) -> None:
    await conn.execute("UPDATE email_verifications SET used_at = $2 WHERE token_hash = $1", token_hash, at)


async def user_by_email(conn: asyncpg.Connection, email: str, *, for_update: bool = False) -> Row | None:
    sql = "SELECT * FROM users WHERE email = $1" + (" FOR UPDATE" if for_update else "")
    return await conn.fetchrow(sql, email)


async def user(conn: asyncpg.Connection, user_id: UUID) -> Row | None:
    return await conn.fetchrow("SELECT * FROM users WHERE user_id = $1", user_id)


async def set_password(conn: asyncpg.Connection, user_id: UUID, password_hash: str, *, email_verified: bool) -> None:
    await conn.execute(
        "UPDATE users SET password_hash = $2, email_verified = email_verified OR $3 WHERE user_id = $1",
        user_id,
        password_hash,
        email_verified,
    )


async def insert_membership(
    conn: asyncpg.Connection,
    *,
    account_id: UUID,
    user_id: UUID,
    role: str,
    permissions: Sequence[str],
    marketplaces: Any,
    joined_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO memberships (account_id, user_id, role, permissions, marketplaces, joined_at)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6)""",
        account_id,
        user_id,
        role,
        list(permissions),
        marketplaces,
        joined_at,
    )


_MEMBER_SELECT = """SELECT m.account_id, m.user_id, m.role, m.permissions, m.marketplaces, m.joined_at,
                           m.access_changed_at, u.email, u.email_verified, u.name, a.legal_name
                    FROM memberships m JOIN users u USING (user_id) JOIN accounts a USING (account_id)"""


async def membership_of_user(conn: asyncpg.Connection, user_id: UUID) -> Row | None:
    return await conn.fetchrow(f"{_MEMBER_SELECT} WHERE m.user_id = $1", user_id)


async def membership(conn: asyncpg.Connection, account_id: UUID, user_id: UUID) -> Row | None:
    return await conn.fetchrow(f"{_MEMBER_SELECT} WHERE m.account_id = $1 AND m.user_id = $2", account_id, user_id)


async def members(conn: asyncpg.Connection, account_id: UUID) -> list[Row]:
    return await conn.fetch(
        f"{_MEMBER_SELECT} WHERE m.account_id = $1 ORDER BY m.role = 'owner' DESC, m.joined_at, u.email", account_id
    )


async def update_membership(
    conn: asyncpg.Connection,
    *,
    account_id: UUID,
    user_id: UUID,
    role: str,
    permissions: Sequence[str],
    marketplaces: Any,
    at: datetime,
) -> None:
    await conn.execute(
        """UPDATE memberships SET role = $3, permissions = $4, marketplaces = $5::jsonb, access_changed_at = $6
           WHERE account_id = $1 AND user_id = $2""",
        account_id,
        user_id,
        role,
        list(permissions),
        marketplaces,
        at,
    )


async def delete_membership(conn: asyncpg.Connection, account_id: UUID, user_id: UUID) -> None:
    await conn.execute("DELETE FROM memberships WHERE account_id = $1 AND user_id = $2", account_id, user_id)


# -- invitations ----------------------------------------------------------------------------------------------
async def insert_invitation(
    conn: asyncpg.Connection,
    *,
    invitation_id: UUID,
    account_id: UUID,
    email: str,
    role: str,
    permissions: Sequence[str],
    marketplaces: Any,
    token_hash: bytes,
    invited_by: UUID,
    created_at: datetime,
    expires_at: datetime,
    name: str | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO invitations (invitation_id, account_id, email, role, permissions, marketplaces, token_hash,
                                    invited_by, created_at, expires_at, name)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11)""",
        invitation_id,
        account_id,
        email,
        role,
        list(permissions),
        marketplaces,
        token_hash,
        invited_by,
        created_at,
        expires_at,
        name,
    )


async def invitation(conn: asyncpg.Connection, account_id: UUID, invitation_id: UUID) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM invitations WHERE account_id = $1 AND invitation_id = $2 FOR UPDATE", account_id, invitation_id
    )


async def invitation_by_token(conn: asyncpg.Connection, token_hash: bytes) -> Row | None:
    return await conn.fetchrow("SELECT * FROM invitations WHERE token_hash = $1 FOR UPDATE", token_hash)


async def invitation_account_by_token(conn: asyncpg.Connection, token_hash: bytes) -> UUID | None:
    """The account of an invitation, without a lock: the account is locked first, then the invitation (the
    order every team command takes, so none of them deadlocks another)."""
    value = await conn.fetchval("SELECT account_id FROM invitations WHERE token_hash = $1", token_hash)
    return value if isinstance(value, UUID) else None


async def pending_invitations_sent_by(
    conn: asyncpg.Connection, account_id: UUID, invited_by: UUID, now: datetime
) -> list[Row]:
    """The invitations a member sent that could still be accepted, locked for revocation."""
    return await conn.fetch(
        """SELECT * FROM invitations
           WHERE account_id = $1 AND invited_by = $2 AND accepted_at IS NULL AND revoked_at IS NULL
             AND expires_at > $3
           ORDER BY created_at
           FOR UPDATE""",
        account_id,
        invited_by,
        now,
    )


async def pending_invitations(conn: asyncpg.Connection, account_id: UUID, now: datetime) -> list[Row]:
    return await conn.fetch(
        """SELECT * FROM invitations
           WHERE account_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2
           ORDER BY created_at""",
        account_id,
        now,
    )


async def mark_invitation_accepted(conn: asyncpg.Connection, invitation_id: UUID, user_id: UUID, at: datetime) -> None:
    await conn.execute(
        "UPDATE invitations SET accepted_at = $2, accepted_user_id = $3 WHERE invitation_id = $1",
        invitation_id,
        at,
        user_id,
    )


async def mark_invitation_revoked(conn: asyncpg.Connection, invitation_id: UUID, at: datetime) -> None:
    await conn.execute("UPDATE invitations SET revoked_at = $2 WHERE invitation_id = $1", invitation_id, at)


# -- OAuth clients --------------------------------------------------------------------------------------------
async def upsert_client(
    conn: asyncpg.Connection,
    *,
    client_id: str,
    name: str,
    redirect_uris: Sequence[str],
    post_logout_redirect_uris: Sequence[str],
    secret_hash: bytes | None,
) -> None:
    await conn.execute(
        """INSERT INTO oauth_clients (client_id, name, redirect_uris, post_logout_redirect_uris, secret_hash)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (client_id) DO UPDATE SET name = EXCLUDED.name, redirect_uris = EXCLUDED.redirect_uris,
               post_logout_redirect_uris = EXCLUDED.post_logout_redirect_uris, secret_hash = EXCLUDED.secret_hash""",
        client_id,
        name,
        list(redirect_uris),
        list(post_logout_redirect_uris),
        secret_hash,
    )


async def client(conn: asyncpg.Connection, client_id: str) -> Row | None:
    return await conn.fetchrow("SELECT * FROM oauth_clients WHERE client_id = $1", client_id)


# -- authorization codes, sessions and refresh tokens ----------------------------------------------------------
async def insert_code(
    conn: asyncpg.Connection,
    *,
    code_hash: bytes,
    client_id: str,
    user_id: UUID,
    account_id: UUID,
    redirect_uri: str,
    scope: str,
    nonce: str | None,
    code_challenge: str,
    auth_time: datetime,
    expires_at: datetime,
    browser_session_id: UUID | None,
) -> None:
    await conn.execute(
        """INSERT INTO authorization_codes (code_hash, client_id, user_id, account_id, redirect_uri, scope, nonce,
                                            code_challenge, auth_time, expires_at, browser_session_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        code_hash,
        client_id,
        user_id,
        account_id,
        redirect_uri,
        scope,
        nonce,
        code_challenge,
        auth_time,
        expires_at,
        browser_session_id,
    )


async def code_for_update(conn: asyncpg.Connection, code_hash: bytes) -> Row | None:
    return await conn.fetchrow("SELECT * FROM authorization_codes WHERE code_hash = $1 FOR UPDATE", code_hash)


async def mark_code_used(conn: asyncpg.Connection, code_hash: bytes, at: datetime, session_id: UUID | None) -> None:
    await conn.execute(
        "UPDATE authorization_codes SET used_at = $2, session_id = $3 WHERE code_hash = $1", code_hash, at, session_id
    )


async def insert_session(
    conn: asyncpg.Connection,
    *,
    session_id: UUID,
    user_id: UUID,
    account_id: UUID,
    client_id: str,
    scope: str,
    auth_time: datetime,
    browser_session_id: UUID | None,
) -> None:
    await conn.execute(
        """INSERT INTO sessions (session_id, user_id, account_id, client_id, scope, auth_time, browser_session_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        session_id,
        user_id,
        account_id,
        client_id,
        scope,
        auth_time,
        browser_session_id,
    )


async def session(conn: asyncpg.Connection, session_id: UUID) -> Row | None:
    return await conn.fetchrow("SELECT * FROM sessions WHERE session_id = $1", session_id)


_ENDED = "RETURNING session_id, user_id, account_id"


async def revoke_session(conn: asyncpg.Connection, session_id: UUID, at: datetime, reason: str) -> list[Row]:
    """Revoke one session; returns it if it was live until now (what must be published), else nothing."""
    return await conn.fetch(
        "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE session_id = $1 AND revoked_at IS NULL "
        + _ENDED,
        session_id,
        at,
        reason,
    )


async def session_standing(conn: asyncpg.Connection, session_id: UUID) -> Row | None:
    """A session with whether its user is still a member of its account (identity's check of every token)."""
    return await conn.fetchrow(
        """SELECT s.user_id, s.account_id, s.revoked_at, m.user_id IS NOT NULL AS member
           FROM sessions s LEFT JOIN memberships m ON m.user_id = s.user_id AND m.account_id = s.account_id
           WHERE s.session_id = $1""",
        session_id,
    )


async def revoke_user_sessions(conn: asyncpg.Connection, user_id: UUID, at: datetime, reason: str) -> None:
    await conn.execute(
        "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE user_id = $1 AND revoked_at IS NULL",
        user_id,
        at,
        reason,
    )


async def insert_refresh(
    conn: asyncpg.Connection, token_hash: bytes, session_id: UUID, issued_at: datetime, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
        token_hash,
        session_id,
        issued_at,
        expires_at,
    )


async def refresh_for_update(conn: asyncpg.Connection, token_hash: bytes) -> Row | None:
    """The refresh token with its session, both locked: two concurrent uses cannot both succeed."""
    return await conn.fetchrow(
        """SELECT r.token_hash, r.session_id, r.issued_at, r.expires_at, r.used_at,
                  s.user_id, s.account_id, s.client_id, s.scope, s.auth_time, s.revoked_at
           FROM refresh_tokens r JOIN sessions s USING (session_id)
           WHERE r.token_hash = $1
           FOR UPDATE""",
        token_hash,
    )


async def mark_refresh_used(conn: asyncpg.Connection, token_hash: bytes, at: datetime) -> None:
    await conn.execute("UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1", token_hash, at)


# -- browser sessions (single sign-on) --------------------------------------------------------------------------
async def insert_browser_session(
    conn: asyncpg.Connection,
    *,
    browser_session_id: UUID,
    token_hash: bytes,
    user_id: UUID,
    account_id: UUID,
    auth_time: datetime,
    created_at: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO browser_sessions (browser_session_id, token_hash, user_id, account_id, auth_time, created_at,
                                         expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        browser_session_id,
        token_hash,
        user_id,
        account_id,
        auth_time,
        created_at,
        expires_at,
    )


async def live_browser_session(conn: asyncpg.Connection, token_hash: bytes, now: datetime) -> Row | None:
    """The browser session a cookie names, if it is neither revoked nor expired and its user is still a member
    of the same account."""
    return await conn.fetchrow(
        """SELECT b.browser_session_id, b.user_id, b.account_id, b.auth_time, b.expires_at, u.email
           FROM browser_sessions b
           JOIN users u USING (user_id)
           JOIN memberships m ON m.user_id = b.user_id AND m.account_id = b.account_id
           WHERE b.token_hash = $1 AND b.revoked_at IS NULL AND b.expires_at > $2""",
        token_hash,
        now,
    )


async def browser_session_id_by_token(conn: asyncpg.Connection, token_hash: bytes) -> UUID | None:
    value = await conn.fetchval("SELECT browser_session_id FROM browser_sessions WHERE token_hash = $1", token_hash)
    return value if isinstance(value, UUID) else None


REPLACED = "replaced by a new sign-in"


async def browser_session_ended(conn: asyncpg.Connection, browser_session_id: UUID) -> bool:
    """Signed out or removed (or unknown). A session replaced by a newer sign-in in the same browser, or one
    that merely expired, does not take back the codes it already issued (they live two minutes)."""
    ended = await conn.fetchval(
        "SELECT revoked_at IS NOT NULL AND revoked_reason IS DISTINCT FROM $2 FROM browser_sessions"
        " WHERE browser_session_id = $1",
        browser_session_id,
        REPLACED,
    )
    return ended is not False


async def revoke_browser_session(
    conn: asyncpg.Connection, browser_session_id: UUID, at: datetime, reason: str, *, client_sessions: bool
) -> list[Row]:
    """End a browser session and, with ``client_sessions``, every refresh-token family signed in through it
    (returned: the sessions that were live until now)."""
    await conn.execute(
        """UPDATE browser_sessions SET revoked_at = $2, revoked_reason = $3
           WHERE browser_session_id = $1 AND revoked_at IS NULL""",
        browser_session_id,
        at,
        reason,
    )
    if not client_sessions:
        return []
    return await conn.fetch(
        """UPDATE sessions SET revoked_at = $2, revoked_reason = $3
           WHERE browser_session_id = $1 AND revoked_at IS NULL """
        + _ENDED,
        browser_session_id,
        at,
        reason,
    )


async def revoke_user_browser_sessions(conn: asyncpg.Connection, user_id: UUID, at: datetime, reason: str) -> None:
    await conn.execute(
        """UPDATE browser_sessions SET revoked_at = $2, revoked_reason = $3
           WHERE user_id = $1 AND revoked_at IS NULL""",
        user_id,
        at,
        reason,
    )


# -- server secrets -----------------------------------------------------------------------------------------------
async def server_secret(conn: asyncpg.Connection, name: str, candidate: bytes) -> bytes:
    """The stored secret ``name``; ``candidate`` becomes it if there is none yet (first process to start wins)."""
    await conn.execute(
        "INSERT INTO server_secrets (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", name, candidate
    )
    value = await conn.fetchval("SELECT secret FROM server_secrets WHERE name = $1", name)
    return bytes(value)


# -- sign-in and registration throttles ---------------------------------------------------------------------
async def lock_signin(conn: asyncpg.Connection, email: str, address: str) -> None:
    """Attempts for one email, and from one address, are serialised across processes, so no count can be raced
    past (always in this order: email, then address)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('signin:' || $1, 0))", email)
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('signin-from:' || $1, 0))", address)


async def forget_failures_before(conn: asyncpg.Connection, since: datetime) -> None:
    await conn.execute("DELETE FROM signin_failures WHERE failed_at <= $1", since)


async def failures(
    conn: asyncpg.Connection,
    since: datetime,
    *,
    email: str | None = None,
    address: str | None = None,
    client_id: str | None = None,
) -> list[datetime]:
    """Failed sign-ins after ``since`` matching every given criterion."""
    rows = await conn.fetch(
        """SELECT failed_at FROM signin_failures
           WHERE failed_at > $1 AND ($2::text IS NULL OR email = $2) AND ($3::text IS NULL OR address = $3)
             AND ($4::text IS NULL OR client_id = $4)
           ORDER BY failed_at""",
        since,
        email,
        address,
        client_id,
    )
    return [r["failed_at"] for r in rows]


async def add_failure(conn: asyncpg.Connection, email: str, address: str, client_id: str | None, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO signin_failures (email, address, client_id, failed_at) VALUES ($1, $2, $3, $4)",
        email,
        address,
        client_id,
        at,
    )


async def clear_failures(conn: asyncpg.Connection, email: str, address: str) -> None:
    """After a good password: the failures of this e-mail from this address (others' stay counted)."""
    await conn.execute("DELETE FROM signin_failures WHERE email = $1 AND address = $2", email, address)


async def registrations_since(conn: asyncpg.Connection, address: str, since: datetime) -> list[datetime]:
    """Registrations attempted from ``address`` after ``since``, locked per address (older rows dropped)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('register-from:' || $1, 0))", address)
    await conn.execute("DELETE FROM registration_attempts WHERE attempted_at <= $1", since)
    rows = await conn.fetch(
        "SELECT attempted_at FROM registration_attempts WHERE address = $1 ORDER BY attempted_at", address
    )
    return [r["attempted_at"] for r in rows]


async def add_registration(conn: asyncpg.Connection, address: str, at: datetime) -> None:
    await conn.execute("INSERT INTO registration_attempts (address, attempted_at) VALUES ($1, $2)", address, at)
