"""SQL for the regions service's own tables, and the batch append the FX import needs."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from unified_regions.domain import Participation, Status, StoredDay
from unified_shared.events import Event
from unified_shared.eventstore import APPEND_LOCK, ConcurrencyError


@dataclass(frozen=True, slots=True)
class Account:
    account_id: UUID
    legal_name: str
    home_marketplace_id: str
    owner_user_id: UUID
    registered_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ParticipationRow:
    marketplace_id: str
    state: Participation
    version: int


# -- accounts ---------------------------------------------------------------------------------------
async def insert_account(conn: asyncpg.Connection, account: Account) -> bool:
    """Remember an account; False when it was already known (redelivery)."""
    inserted = await conn.fetchval(
        """INSERT INTO accounts (account_id, legal_name, home_marketplace_id, owner_user_id, registered_at)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id) DO NOTHING RETURNING true""",
        account.account_id,
        account.legal_name,
        account.home_marketplace_id,
        account.owner_user_id,
        account.registered_at,
    )
    return bool(inserted)


async def get_account(conn: asyncpg.Connection, account_id: UUID) -> Account | None:
    row = await conn.fetchrow(
        """SELECT account_id, legal_name, home_marketplace_id, owner_user_id, registered_at
           FROM accounts WHERE account_id = $1""",
        account_id,
    )
    return Account(**dict(row)) if row else None


# -- participations ---------------------------------------------------------------------------------
async def save_participation(
    conn: asyncpg.Connection, account_id: UUID, marketplace_id: str, state: Participation, version: int
) -> None:
    await conn.execute(
        """INSERT INTO participations (account_id, marketplace_id, status, subscribed, listings_active,
                                       suspension_reason, last_at, version)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (account_id, marketplace_id) DO UPDATE
           SET status = EXCLUDED.status, subscribed = EXCLUDED.subscribed,
               listings_active = EXCLUDED.listings_active, suspension_reason = EXCLUDED.suspension_reason,
               last_at = EXCLUDED.last_at, version = EXCLUDED.version, updated_at = now()""",
        account_id,
        marketplace_id,
        str(state.status),
        state.subscribed,
        state.listings_active,
        state.suspension_reason,
        state.last_at,
        version,
    )


async def list_participations(conn: asyncpg.Connection, account_id: UUID) -> list[ParticipationRow]:
    rows = await conn.fetch(
        """SELECT marketplace_id, status, subscribed, listings_active, suspension_reason, last_at, version
           FROM participations WHERE account_id = $1 ORDER BY marketplace_id""",
        account_id,
    )
    return [
        ParticipationRow(
            marketplace_id=r["marketplace_id"],
            state=Participation(
                status=Status(r["status"]),
                subscribed=r["subscribed"],
                listings_active=r["listings_active"],
                last_at=r["last_at"],
                suspension_reason=r["suspension_reason"],
            ),
            version=r["version"],
        )
        for r in rows
    ]


# -- FX ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FxDay:
    date: dt.date
    rates: dict[str, Decimal]
    derived: dict[str, str]
    source: str
    revision: int


def _rates_json(rates: dict[str, Decimal]) -> dict[str, str]:
    return {c: format(r, "f") for c, r in sorted(rates.items())}


async def lock_appends(conn: asyncpg.Connection) -> None:
    """Take the event store's append lock now (it is re-entrant within the transaction): what we read
    after this cannot be changed by another append before we commit."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)


async def stored_days(conn: asyncpg.Connection, dates: Sequence[dt.date]) -> dict[dt.date, StoredDay]:
    rows = await conn.fetch(
        "SELECT rate_date, rates, revision FROM fx_rates WHERE rate_date = ANY($1::date[])", list(dates)
    )
    return {r["rate_date"]: StoredDay({c: Decimal(v) for c, v in r["rates"].items()}, r["revision"]) for r in rows}


async def save_days(conn: asyncpg.Connection, days: Sequence[FxDay]) -> None:
    """Upsert many days in one statement."""
    if not days:
        return
    await conn.execute(
        """INSERT INTO fx_rates (rate_date, rates, derived, source, revision)
           SELECT d, r::jsonb, x::jsonb, s, v
           FROM unnest($1::date[], $2::text[], $3::text[], $4::text[], $5::int[]) AS t(d, r, x, s, v)
           ON CONFLICT (rate_date) DO UPDATE
           SET rates = EXCLUDED.rates, derived = EXCLUDED.derived, source = EXCLUDED.source,
               revision = EXCLUDED.revision, imported_at = now()""",
        [d.date for d in days],
        [json.dumps(_rates_json(d.rates)) for d in days],
        [json.dumps(d.derived, sort_keys=True) for d in days],
        [d.source for d in days],
        [d.revision for d in days],
    )


def _fx_day(row: asyncpg.Record) -> FxDay:
    return FxDay(
        date=row["rate_date"],
        rates={c: Decimal(v) for c, v in row["rates"].items()},
        derived=dict(row["derived"]),
        source=row["source"],
        revision=row["revision"],
    )


async def get_day(conn: asyncpg.Connection, date: dt.date, *, on_or_before: bool = False) -> FxDay | None:
    if on_or_before:
        row = await conn.fetchrow("SELECT * FROM fx_rates WHERE rate_date <= $1 ORDER BY rate_date DESC LIMIT 1", date)
    else:
        row = await conn.fetchrow("SELECT * FROM fx_rates WHERE rate_date = $1", date)
    return _fx_day(row) if row else None


async def fx_summary(conn: asyncpg.Connection) -> dict[str, Any]:
    row = await conn.fetchrow("SELECT count(*) AS days, min(rate_date) AS first, max(rate_date) AS last FROM fx_rates")
    return {"days": row["days"], "first_date": row["first"], "last_date": row["last"]}


async def append_many(
    conn: asyncpg.Connection, items: Sequence[tuple[str, int, Event]], *, occurred_at: dt.datetime
) -> int:
    """Append one event to each of many streams (stream, expected version, event) in two statements.

    Same rules as ``unified_shared.eventstore.append`` (the shared append lock, expected versions, the
    same row format), built for thousands of FX days in one transaction instead of a round trip each.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("append_many() must run inside a transaction")
    if not items:
        return 0
    await lock_appends(conn)
    streams = [s for s, _, _ in items]
    if len(set(streams)) != len(streams):
        raise ValueError("append_many takes one event per stream")
    actual = {
        r["stream_id"]: r["v"]
        for r in await conn.fetch(
            "SELECT stream_id, max(version) AS v FROM event_store WHERE stream_id = ANY($1::text[]) GROUP BY stream_id",
            streams,
        )
    }
    for stream, expected, _ in items:
        if actual.get(stream, 0) != expected:
            raise ConcurrencyError(stream, expected, actual.get(stream, 0))
    try:
        await conn.execute(
            """INSERT INTO event_store (event_id, stream_id, version, event_type, topic, partition_key, payload,
                                        occurred_at)
               SELECT e, s, v, t, tp, k, p::jsonb, $8
               FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[])
                    AS x(e, s, v, t, tp, k, p)""",
            [uuid4() for _ in items],
            streams,
            [expected + 1 for _, expected, _ in items],
            [e.ce_type() for _, _, e in items],
            [e.TOPIC for _, _, e in items],
            [e.partition_key() for _, _, e in items],
            [json.dumps(e.model_dump(mode="json")) for _, _, e in items],
            occurred_at,
        )
    except asyncpg.UniqueViolationError:
        raise ConcurrencyError(items[0][0], items[0][1], -1) from None
    return len(items)
