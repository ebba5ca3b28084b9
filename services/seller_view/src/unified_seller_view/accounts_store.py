"""SQL of the read model's accounts, members and marketplace participations.
Like every read-model SQL module, each function runs on a connection whose search_path names
the generation's schema first (see ``generations.use_schema``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from unified_seller_view.domain import ParticipationChange, ParticipationState

# -- identity ---------------------------------------------------------------------------------------


async def upsert_account(
    conn: asyncpg.Connection,
    account_id: UUID,
    *,
    legal_name: str,
    home_marketplace_id: str,
    owner_user_id: UUID,
    owner_email: str,
    registered_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO accounts (account_id, legal_name, home_marketplace_id, owner_user_id, owner_email, registered_at)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (account_id) DO UPDATE SET legal_name = EXCLUDED.legal_name,
               home_marketplace_id = EXCLUDED.home_marketplace_id, owner_user_id = EXCLUDED.owner_user_id,
               owner_email = EXCLUDED.owner_email, registered_at = EXCLUDED.registered_at""",
        account_id,
        legal_name,
        home_marketplace_id,
        owner_user_id,
        owner_email,
        registered_at,
    )


async def upsert_member(
    conn: asyncpg.Connection,
    account_id: UUID,
    user_id: UUID,
    *,
    email: str | None,
    role: str,
    permissions: Sequence[str],
    scope: Any,
    changed_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO members (account_id, user_id, email, role, permissions, marketplace_scope, changed_at)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
           ON CONFLICT (account_id, user_id) DO UPDATE SET email = coalesce(EXCLUDED.email, members.email),
               role = EXCLUDED.role, permissions = EXCLUDED.permissions,
               marketplace_scope = EXCLUDED.marketplace_scope, changed_at = EXCLUDED.changed_at,
               removed_at = NULL""",
        account_id,
        user_id,
        email,
        role,
        sorted(permissions),
        scope,
        changed_at,
    )


async def remove_member(conn: asyncpg.Connection, account_id: UUID, user_id: UUID, removed_at: datetime) -> None:
    await conn.execute(
        "UPDATE members SET removed_at = $3, changed_at = $3 WHERE account_id = $1 AND user_id = $2",
        account_id,
        user_id,
        removed_at,
    )


async def get_account(conn: asyncpg.Connection, account_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM accounts WHERE account_id = $1", account_id)


# -- participations ---------------------------------------------------------------------------------


async def insert_participation_event(
    conn: asyncpg.Connection,
    account_id: UUID,
    marketplace_id: str,
    event_id: UUID,
    *,
    event_type: str,
    at: datetime,
    sequence: int | None,
    reason: str | None,
) -> None:
    await conn.execute(
        """INSERT INTO participation_events (account_id, marketplace_id, event_id, event_type, at, sequence, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING""",
        account_id,
        marketplace_id,
        event_id,
        event_type,
        at,
        sequence,
        reason,
    )


async def participation_changes(
    conn: asyncpg.Connection, account_id: UUID, marketplace_id: str
) -> list[ParticipationChange]:
    rows = await conn.fetch(
        """SELECT event_type, at, sequence, event_id, reason FROM participation_events
           WHERE account_id = $1 AND marketplace_id = $2""",
        account_id,
        marketplace_id,
    )
    return [ParticipationChange(r["event_type"], r["at"], r["sequence"], str(r["event_id"]), r["reason"]) for r in rows]


async def save_participation(
    conn: asyncpg.Connection, account_id: UUID, marketplace_id: str, state: ParticipationState
) -> None:
    await conn.execute(
        """INSERT INTO participations (account_id, marketplace_id, participation, subscription, listings,
               opened_at, subscribed_since, last_change_at, suspended_reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (account_id, marketplace_id) DO UPDATE SET participation = EXCLUDED.participation,
               subscription = EXCLUDED.subscription, listings = EXCLUDED.listings, opened_at = EXCLUDED.opened_at,
               subscribed_since = EXCLUDED.subscribed_since, last_change_at = EXCLUDED.last_change_at,
               suspended_reason = EXCLUDED.suspended_reason""",
        account_id,
        marketplace_id,
        state.participation,
        state.subscription,
        state.listings,
        state.opened_at,
        state.subscribed_since,
        state.last_change_at,
        state.suspended_reason,
    )


async def participations(
    conn: asyncpg.Connection, account_id: UUID, marketplaces: list[str] | None
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM participations WHERE account_id = $1 AND ($2::text[] IS NULL OR marketplace_id = ANY($2))
           ORDER BY marketplace_id""",
        account_id,
        marketplaces,
    )


async def participation_history(
    conn: asyncpg.Connection, account_id: UUID, marketplaces: list[str] | None
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT marketplace_id, event_type, at, reason FROM participation_events
           WHERE account_id = $1 AND ($2::text[] IS NULL OR marketplace_id = ANY($2))
           ORDER BY marketplace_id, at, sequence NULLS FIRST, event_id""",
        account_id,
        marketplaces,
    )
