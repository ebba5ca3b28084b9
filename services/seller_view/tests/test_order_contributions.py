"""Each order's stored contribution (order_contributions) is what a recompute gives, and a generation built
before the table gets its contributions at start-up (summaries.fill_contributions, after read-model step 005),
after which its batches keep the same rows as a recompute from scratch."""

from __future__ import annotations

from typing import Any

import asyncpg

from unified_seller_view import summaries
from unified_shared.db import connect

from . import test_summaries as history_of
from .support import apply_in_batches, forget_step, live_generation


async def _rows(conn: asyncpg.Connection, schema: str, table: str) -> list[str]:
    sql = f'SELECT row_to_json(s)::text AS j FROM "{schema}".{table} s ORDER BY 1'
    return [r["j"] for r in await conn.fetch(sql)]


async def _recomputed(conn: asyncpg.Connection, schema: str) -> tuple[list[str], list[str]]:
    """(day rows, contributions) recomputed from scratch, in a transaction rolled back."""
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute(f'SET LOCAL search_path TO "{schema}", public')
        await summaries.refresh_all(conn)
        return await _rows(conn, schema, "order_day_summaries"), await _rows(conn, schema, "order_contributions")
    finally:
        await tx.rollback()


async def test_a_generation_from_before_the_contributions_gets_them_and_keeps_them(make_db: Any) -> None:
    from unified_seller_view import generations as gens

    dsn = await make_db()
    conn = await connect(dsn)
    try:
        old = await live_generation(conn)
        events = history_of.received_history(11, [7, 8], 40, days=40)
        half = len(events) // 2
        await apply_in_batches(conn, old.schema, events[:half], 9)
        days = await _rows(conn, old.schema, "order_day_summaries")
        assert days and (days, await _rows(conn, old.schema, "order_contributions")) == await _recomputed(
            conn, old.schema
        )
        # as step 005 leaves a generation built before it: the table, empty
        await conn.execute(f'DROP TABLE "{old.schema}".order_contributions')
        await forget_step(conn, old.schema, 5)
        assert await gens.upgrade_generations(conn) == [f"{old.schema}:005_order_contributions"]
        assert await summaries.fill_contributions(conn) == [old.schema]
        assert await summaries.fill_contributions(conn) == []  # once
        assert await _rows(conn, old.schema, "order_day_summaries") == days  # the same day rows
        assert (days, await _rows(conn, old.schema, "order_contributions")) == await _recomputed(conn, old.schema)
        await apply_in_batches(conn, old.schema, events[half:], 9)  # its batches take the old sums from the filled rows
        kept = (
            await _rows(conn, old.schema, "order_day_summaries"),
            await _rows(conn, old.schema, "order_contributions"),
        )
        assert kept == await _recomputed(conn, old.schema)
    finally:
        await conn.close()
