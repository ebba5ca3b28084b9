"""SQL of the read model's FX rates (per-day rate sets and the look-ups of a day's rate).
Like every read-model SQL module, each function runs on a connection whose search_path names
the generation's schema first (see ``generations.use_schema``)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import asyncpg

from unified_seller_view.overview_rules import Rate

# -- FX ---------------------------------------------------------------------------------------------


async def fx_day_revision(conn: asyncpg.Connection, day: date) -> int | None:
    value = await conn.fetchval("SELECT revision FROM fx_days WHERE date = $1", day)
    return int(value) if value is not None else None


async def fx_day_currencies(conn: asyncpg.Connection, day: date) -> set[str]:
    return {r["currency"] for r in await conn.fetch("SELECT currency FROM fx_rates WHERE date = $1", day)}


async def replace_fx_day(
    conn: asyncpg.Connection,
    day: date,
    *,
    revision: int,
    source: str,
    derived: dict[str, str],
    rates: dict[str, Decimal],
) -> None:
    """Keep only the given revision of the day: its rates replace the older revision's."""
    await conn.execute("DELETE FROM fx_days WHERE date = $1", day)
    await conn.execute(
        "INSERT INTO fx_days (date, revision, source, derived) VALUES ($1, $2, $3, $4::jsonb)",
        day,
        revision,
        source,
        derived,
    )
    await conn.executemany(
        "INSERT INTO fx_rates (currency, date, rate) VALUES ($1, $2, $3)",
        [(currency.upper(), day, rate) for currency, rate in sorted(rates.items())],
    )


async def latest_rate_day(conn: asyncpg.Connection) -> date | None:
    """The newest day with published rates (conversions of later days are provisional)."""
    value = await conn.fetchval("SELECT max(date) FROM fx_days")
    return value if isinstance(value, date) else None


async def rates_on_or_before(conn: asyncpg.Connection, wanted: set[tuple[str, date]]) -> dict[tuple[str, date], Rate]:
    """For each (currency, day): the last rate published on or before the day (its latest revision)."""
    if not wanted:
        return {}
    pairs = sorted(wanted)
    rows = await conn.fetch(
        """SELECT n.currency, n.day, r.date, r.rate, d.revision, d.source
           FROM unnest($1::text[], $2::date[]) AS n(currency, day)
           JOIN LATERAL (SELECT date, rate FROM fx_rates
                         WHERE currency = n.currency AND date <= n.day ORDER BY date DESC LIMIT 1) r ON true
           JOIN fx_days d ON d.date = r.date""",
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )
    return {
        (r["currency"], r["day"]): Rate(r["currency"], r["date"], r["rate"], r["revision"], r["source"]) for r in rows
    }
