"""SQL (asyncpg) for the identity service's own tables. Every function runs on the caller's connection, so
the handler decides the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

Row: TypeAlias = asyncpg.Record


@dataclass(frozen=True, slots=True)
class Access:
    """What a membership or an invitation grants, as its row keeps it: a role, permissions and the marketplace
    scope (``"*"`` or marketplace IDs, stored as JSON)."""

    role: str
    permissions: Sequence[str]
    marketplaces: Any


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
    access: Access,
    joined_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO memberships (account_id, user_id, role, permissions, marketplaces, joined_at)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6)""",
        account_id,
        user_id,
        access.role,
        list(access.permissions),
        access.marketplaces,
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
    access: Access,
    at: datetime,
) -> None:
    await conn.execute(
        """UPDATE memberships SET role = $3, permissions = $4, marketplaces = $5::jsonb, access_changed_at = $6
           WHERE account_id = $1 AND user_id = $2""",
        account_id,
        user_id,
        access.role,
        list(access.permissions),
        access.marketplaces,
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
    access: Access,
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
        access.role,
        list(access.permissions),
        access.marketplaces,
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


# -- server secrets -----------------------------------------------------------------------------------------------
async def server_secret(conn: asyncpg.Connection, name: str, candidate: bytes) -> bytes:
    """The stored secret ``name``; ``candidate`` becomes it if there is none yet (first process to start wins)."""
    await conn.execute(
        "INSERT INTO server_secrets (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", name, candidate
    )
    value = await conn.fetchval("SELECT secret FROM server_secrets WHERE name = $1", name)
    return bytes(value)
