"""SQL for the regions service's own tables, and the participation streams read back from the event store."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from unified_regions.domain import Participation, Status, StoredDay, evolve, stream_id
from unified_shared import eventstore
from unified_shared.eventstore import APPEND_LOCK


@dataclass(frozen=True, slots=True)
class Account:
    """A registered account as regions keeps it: whose participations it checks and which home it opened."""

    account_id: UUID
    legal_name: str
    home_marketplace_id: str
    owner_user_id: UUID
    registered_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ParticipationRow:
    """A participation as folded from its stream, with the version the next command appends after."""

    marketplace_id: str
    state: Participation
    version: int


@dataclass(frozen=True, slots=True)
class FxDay:
    """One stored day of ECB euro reference rates (and the ones derived), one revision."""

    date: dt.date
    rates: dict[str, Decimal]
    derived: dict[str, str]
    source: str
    revision: int


def _rates_json(rates: dict[str, Decimal]) -> dict[str, str]:
    return {c: format(r, "f") for c, r in sorted(rates.items())}


def _fx_day(row: asyncpg.Record) -> FxDay:
    return FxDay(
        date=row["rate_date"],
        rates={c: Decimal(v) for c, v in row["rates"].items()},
        derived=dict(row["derived"]),
        source=row["source"],
        revision=row["revision"],
    )


class PgRegionsStore:
    """The regions tables (and the participation streams) as seen by one connection and its transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def load_participation(self, account_id: UUID, marketplace_id: str) -> tuple[Participation, int]:
        """The participation folded from its stream, and the stream's version."""
        return await eventstore.load(self.conn, stream_id(account_id, marketplace_id), evolve, Participation())

    async def insert_account(self, account: Account) -> bool:
        """Remember an account; False when it was already known (redelivery)."""
        inserted = await self.conn.fetchval(
            """INSERT INTO accounts (account_id, legal_name, home_marketplace_id, owner_user_id, registered_at)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id) DO NOTHING RETURNING true""",
            account.account_id,
            account.legal_name,
            account.home_marketplace_id,
            account.owner_user_id,
            account.registered_at,
        )
        return bool(inserted)

    async def get_account(self, account_id: UUID) -> Account | None:
        row = await self.conn.fetchrow(
            """SELECT account_id, legal_name, home_marketplace_id, owner_user_id, registered_at
               FROM accounts WHERE account_id = $1""",
            account_id,
        )
        return Account(**dict(row)) if row else None

    async def save_participation(
        self, account_id: UUID, marketplace_id: str, state: Participation, version: int
    ) -> None:
        await self.conn.execute(
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

    async def list_participations(self, account_id: UUID) -> list[ParticipationRow]:
        rows = await self.conn.fetch(
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

    async def lock_appends(self) -> None:
        """Take the event store's append lock now (it is re-entrant within the transaction): what we read
        after this cannot be changed by another append before we commit."""
        await self.conn.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)

    async def stored_days(self, dates: Sequence[dt.date]) -> dict[dt.date, StoredDay]:
        rows = await self.conn.fetch(
            "SELECT rate_date, rates, revision FROM fx_rates WHERE rate_date = ANY($1::date[])", list(dates)
        )
        return {r["rate_date"]: StoredDay({c: Decimal(v) for c, v in r["rates"].items()}, r["revision"]) for r in rows}

    async def save_days(self, days: Sequence[FxDay]) -> None:
        """Upsert many days in one statement."""
        if not days:
            return
        await self.conn.execute(
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

    async def get_day(self, date: dt.date, *, on_or_before: bool = False) -> FxDay | None:
        if on_or_before:
            row = await self.conn.fetchrow(
                "SELECT * FROM fx_rates WHERE rate_date <= $1 ORDER BY rate_date DESC LIMIT 1", date
            )
        else:
            row = await self.conn.fetchrow("SELECT * FROM fx_rates WHERE rate_date = $1", date)
        return _fx_day(row) if row else None

    async def fx_summary(self) -> dict[str, Any]:
        row = await self.conn.fetchrow(
            "SELECT count(*) AS days, min(rate_date) AS first, max(rate_date) AS last FROM fx_rates"
        )
        return {"days": row["days"], "first_date": row["first"], "last_date": row["last"]}
