"""SQL for the listings service's own tables: offers, links, FX publications (participations are shared)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from unified_listings.domain import RateBook, SourceOffer, TargetOffer
from unified_shared.contracts.listings import TargetRule


def offer_stream(account_id: UUID, marketplace_id: str, sku: str) -> str:
    return f"offer:{account_id}:{marketplace_id}:{sku}"


def link_stream(account_id: UUID, source_marketplace_id: str, sku: str) -> str:
    return f"link:{account_id}:{source_marketplace_id}:{sku}"


@dataclass(frozen=True, slots=True)
class Link:
    """A stored link: one source (marketplace, SKU or '*') and the rule of each target it prices."""

    account_id: UUID
    source_marketplace_id: str
    sku: str
    targets: list[TargetRule]
    version: int


@dataclass(frozen=True, slots=True)
class TargetRow:
    """A linked offer's new state, written in bulk."""

    account_id: UUID
    sku: str
    marketplace_id: str
    currency: str
    price: Decimal | None
    quantity: int
    status: str
    source_marketplace_id: str
    source_price: Decimal | None
    fx_rate: Decimal | None
    fx_rate_date: dt.date | None
    rule: dict[str, Any] | None
    clamped: str | None
    stop_reason: str | None
    version: int


async def get_offer(
    conn: asyncpg.Connection, account_id: UUID, marketplace_id: str, sku: str, *, for_update: bool = False
) -> asyncpg.Record | None:
    sql = "SELECT * FROM offers WHERE account_id = $1 AND marketplace_id = $2 AND sku = $3"
    return await conn.fetchrow(sql + (" FOR UPDATE" if for_update else ""), account_id, marketplace_id, sku)


async def save_own_offer(conn: asyncpg.Connection, account_id: UUID, source: SourceOffer, version: int) -> None:
    await conn.execute(
        """INSERT INTO offers (account_id, sku, marketplace_id, kind, currency, price, quantity, status, version)
           VALUES ($1, $2, $3, 'own', $4, $5, $6, $7, $8)
           ON CONFLICT (account_id, marketplace_id, sku) DO UPDATE SET
               kind = 'own', price = EXCLUDED.price, quantity = EXCLUDED.quantity, status = EXCLUDED.status,
               version = EXCLUDED.version, updated_at = now()""",
        account_id,
        source.sku,
        source.marketplace_id,
        source.currency,
        source.price,
        source.quantity,
        source.status,
        version,
    )


async def list_offers(
    conn: asyncpg.Connection, account_id: UUID, marketplace_ids: Sequence[str] | None, sku: str | None
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """SELECT * FROM offers WHERE account_id = $1
                 AND ($2::text[] IS NULL OR marketplace_id = ANY($2::text[]))
                 AND ($3::text IS NULL OR sku = $3)
               ORDER BY sku, marketplace_id""",
            account_id,
            list(marketplace_ids) if marketplace_ids is not None else None,
            sku,
        )
    )


def _link(row: asyncpg.Record) -> Link:
    targets = [TargetRule.model_validate(t) for t in row["targets"]]
    return Link(row["account_id"], row["source_marketplace_id"], row["sku"], targets, row["version"])


async def get_link(conn: asyncpg.Connection, account_id: UUID, source: str, sku: str) -> Link | None:
    row = await conn.fetchrow(
        "SELECT * FROM links WHERE account_id = $1 AND source_marketplace_id = $2 AND sku = $3 FOR UPDATE",
        account_id,
        source,
        sku,
    )
    return _link(row) if row else None


async def save_link(conn: asyncpg.Connection, link: Link) -> None:
    await conn.execute(
        """INSERT INTO links (account_id, source_marketplace_id, sku, targets, version) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (account_id, source_marketplace_id, sku) DO UPDATE
           SET targets = EXCLUDED.targets, version = EXCLUDED.version, updated_at = now()""",
        link.account_id,
        link.source_marketplace_id,
        link.sku,
        [t.model_dump(mode="json") for t in link.targets],
        link.version,
    )


async def links(conn: asyncpg.Connection, account_ids: Sequence[UUID] | None) -> list[Link]:
    rows = await conn.fetch(
        "SELECT * FROM links WHERE $1::uuid[] IS NULL OR account_id = ANY($1::uuid[])",
        list(account_ids) if account_ids is not None else None,
    )
    return [_link(r) for r in rows]


async def own_offers(conn: asyncpg.Connection, account_ids: Sequence[UUID] | None) -> list[SourceOffer]:
    """Own offers of accounts that have links (the only ones that can be sources)."""
    rows = await conn.fetch(
        """SELECT o.* FROM offers o
           WHERE o.kind = 'own' AND ($1::uuid[] IS NULL OR o.account_id = ANY($1::uuid[]))
             AND EXISTS (SELECT 1 FROM links l WHERE l.account_id = o.account_id
                                                 AND l.source_marketplace_id = o.marketplace_id)""",
        list(account_ids) if account_ids is not None else None,
    )
    return [
        SourceOffer(
            r["account_id"], r["sku"], r["marketplace_id"], r["currency"], r["price"], r["quantity"], r["status"]
        )
        for r in rows
    ]


async def own_keys(conn: asyncpg.Connection, account_ids: Sequence[UUID] | None) -> set[tuple[UUID, str, str]]:
    rows = await conn.fetch(
        "SELECT account_id, marketplace_id, sku FROM offers WHERE kind = 'own'"
        " AND ($1::uuid[] IS NULL OR account_id = ANY($1::uuid[]))",
        list(account_ids) if account_ids is not None else None,
    )
    return {(r["account_id"], r["marketplace_id"], r["sku"]) for r in rows}


async def linked_offers(
    conn: asyncpg.Connection, account_ids: Sequence[UUID] | None
) -> dict[tuple[UUID, str, str], TargetOffer]:
    """Every linked offer of these accounts (all when None), locked until the transaction ends."""
    rows = await conn.fetch(
        """SELECT account_id, sku, marketplace_id, price, status, source_price, fx_rate, fx_rate_date, rule, version
           FROM offers WHERE kind = 'linked' AND ($1::uuid[] IS NULL OR account_id = ANY($1::uuid[]))
           FOR UPDATE""",
        list(account_ids) if account_ids is not None else None,
    )
    return {
        (r["account_id"], r["marketplace_id"], r["sku"]): TargetOffer(
            r["account_id"],
            r["sku"],
            r["marketplace_id"],
            r["price"],
            r["status"],
            r["source_price"],
            r["fx_rate"],
            r["fx_rate_date"],
            r["rule"],
            r["version"],
        )
        for r in rows
    }


async def save_targets(conn: asyncpg.Connection, rows: Sequence[TargetRow]) -> None:
    """Insert or overwrite many linked offers in one statement."""
    if not rows:
        return
    await conn.execute(
        """INSERT INTO offers (account_id, sku, marketplace_id, kind, currency, price, quantity, status,
                               source_marketplace_id, source_price, fx_rate, fx_rate_date, rule, clamped,
                               stop_reason, version)
           SELECT a, s, m, 'linked', c, p, q, st, sm, sp, fr, fd, r, cl, sr, v
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::numeric[], $6::int[], $7::text[],
                       $8::text[], $9::numeric[], $10::numeric[], $11::date[], $12::jsonb[], $13::text[],
                       $14::text[], $15::int[]) AS u(a, s, m, c, p, q, st, sm, sp, fr, fd, r, cl, sr, v)
           ON CONFLICT (account_id, marketplace_id, sku) DO UPDATE SET
               price = EXCLUDED.price, quantity = EXCLUDED.quantity, status = EXCLUDED.status,
               source_marketplace_id = EXCLUDED.source_marketplace_id, source_price = EXCLUDED.source_price,
               fx_rate = EXCLUDED.fx_rate, fx_rate_date = EXCLUDED.fx_rate_date, rule = EXCLUDED.rule,
               clamped = EXCLUDED.clamped, stop_reason = EXCLUDED.stop_reason, version = EXCLUDED.version,
               updated_at = now()
           WHERE offers.kind = 'linked'""",
        [r.account_id for r in rows],
        [r.sku for r in rows],
        [r.marketplace_id for r in rows],
        [r.currency for r in rows],
        [r.price for r in rows],
        [r.quantity for r in rows],
        [r.status for r in rows],
        [r.source_marketplace_id for r in rows],
        [r.source_price for r in rows],
        [r.fx_rate for r in rows],
        [r.fx_rate_date for r in rows],
        [r.rule for r in rows],
        [r.clamped for r in rows],
        [r.stop_reason for r in rows],
        [r.version for r in rows],
    )


async def record_fx(
    conn: asyncpg.Connection, date: dt.date, revision: int, rates: dict[str, Decimal], source: str
) -> bool:
    """Store a publication; True when it is now the latest (a newer day, or a revision of the latest day)."""
    before = await latest_rates(conn)
    await conn.execute(
        """INSERT INTO fx_publications (date, revision, rates, source) VALUES ($1, $2, $3, $4)
           ON CONFLICT (date, revision) DO NOTHING""",
        date,
        revision,
        {k: format(v, "f") for k, v in rates.items()},
        source,
    )
    return before is None or (date, revision) > (before.date, before.revision)


async def latest_rates(conn: asyncpg.Connection) -> RateBook | None:
    row = await conn.fetchrow("SELECT * FROM fx_publications ORDER BY date DESC, revision DESC LIMIT 1")
    if row is None:
        return None
    rates = row["rates"] if isinstance(row["rates"], dict) else json.loads(row["rates"])
    return RateBook(row["date"], row["revision"], row["source"], {k: Decimal(v) for k, v in rates.items()})


async def sells(conn: asyncpg.Connection, account_ids: Sequence[UUID] | None) -> set[tuple[UUID, str]]:
    """(account, marketplace) pairs open with active listings."""
    rows = await conn.fetch(
        """SELECT account_id, marketplace_id FROM participations
           WHERE status = 'open' AND listings_active AND ($1::uuid[] IS NULL OR account_id = ANY($1::uuid[]))""",
        list(account_ids) if account_ids is not None else None,
    )
    return {(r["account_id"], r["marketplace_id"]) for r in rows}
