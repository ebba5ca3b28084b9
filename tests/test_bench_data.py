"""The overview benchmark's own data path, small: its generated orders load into the current read model (COPY
by column name, so a read-model step that adds columns does not break it) and the summaries built from them
answer what the per-order SQL and the Python reference answer. ``make bench`` is never run by the suite: this
keeps its data generation from breaking unseen (it did once, after read-model step 006)."""

from __future__ import annotations

from bench import bench_overview
from bench import overview_data as data
from unified_shared.db import connect


async def test_the_overview_bench_data_loads_and_its_summaries_match_the_per_order_answers(fresh_db: str) -> None:
    conn = await connect(fresh_db)
    try:
        await data.prepare(conn, neighbour_orders=300)
        account, _, _ = await data.load(conn, 400, seed=3)
        assert await conn.fetchval(f"SELECT count(*) FROM {data.SCHEMA}.orders WHERE account_id = $1", account) == 400
        assert await conn.fetchval(
            f"SELECT count(*) FROM {data.SCHEMA}.order_day_summaries WHERE account_id = $1", account
        )
        figures = await bench_overview._measure(conn, account, 400, runs=4)
    finally:
        await conn.close()
    assert figures["same"] is True
