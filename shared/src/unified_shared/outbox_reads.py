"""What the outbox relay reads from its database: the rows after its saved cursor (of finished transactions
only), the cursor itself, and the backlog behind it. SQL only; the relay (``outbox``) decides what to do."""

from __future__ import annotations

import asyncpg

from unified_shared.outbox_send import OUTGOING_COLUMNS, Cursor, Outgoing


async def cursor(conn: asyncpg.Connection, relay: str) -> Cursor:
    row = await conn.fetchrow("SELECT txid, position FROM outbox_position WHERE relay = $1", relay)
    return (int(row["txid"]), int(row["position"])) if row else (0, 0)


async def save_cursor(conn: asyncpg.Connection, relay: str, at: Cursor) -> None:
    await conn.execute(
        """INSERT INTO outbox_position (relay, txid, position) VALUES ($1, $2::xid8, $3)
           ON CONFLICT (relay) DO UPDATE
           SET txid = EXCLUDED.txid, position = EXCLUDED.position, updated_at = now()""",
        relay,
        at[0],
        at[1],
    )


async def rows_after(conn: asyncpg.Connection, after: Cursor, limit: int) -> tuple[list[Outgoing], Cursor]:
    """The next rows after ``after``, of finished transactions only; and the cursor of the last one."""
    rows = await conn.fetch(
        f"""SELECT {OUTGOING_COLUMNS} FROM event_store
           WHERE (txid, position) > ($1::xid8, $2::bigint) AND txid < pg_snapshot_xmin(pg_current_snapshot())
           ORDER BY txid, position LIMIT $3""",
        after[0],
        after[1],
        limit,
    )
    batch = [Outgoing.of_row(r) for r in rows]
    return batch, ((batch[-1].txid, batch[-1].position) if batch else after)


async def held_back(conn: asyncpg.Connection, after: Cursor) -> bool:
    """Committed rows after ``after`` that a running older transaction keeps from being read yet."""
    held: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM event_store WHERE (txid, position) > ($1::xid8, $2::bigint))",
        after[0],
        after[1],
    )
    return held


async def backlog(conn: asyncpg.Connection, relay: str) -> tuple[int, float]:
    """Rows not yet published and the age in seconds of the oldest of them (0 when none)."""
    row = await conn.fetchrow(
        """WITH saved AS (
               SELECT coalesce(max(txid), '0'::xid8) AS t, coalesce(max(position), 0) AS p
               FROM outbox_position WHERE relay = $1)
           SELECT (SELECT count(*) FROM event_store e WHERE (e.txid, e.position) > (saved.t, saved.p))
                      AS backlog,
                  (SELECT extract(epoch FROM clock_timestamp() - e.recorded_at) FROM event_store e
                   WHERE (e.txid, e.position) > (saved.t, saved.p) ORDER BY e.txid, e.position LIMIT 1)
                      AS age
           FROM saved""",
        relay,
    )
    return max(0, int(row["backlog"])), float(row["age"] or 0.0)
