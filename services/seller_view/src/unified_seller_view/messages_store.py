"""SQL of the read model's message threads, messages, marks and reply-wait cycles.
Like every read-model SQL module, each function runs on a connection whose search_path names
the generation's schema first (see ``generations.use_schema``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from unified_seller_view.reply_wait_rules import Cycle, Wait
from unified_shared.thread_timeline import Entry

# -- messages ---------------------------------------------------------------------------------------


async def upsert_thread(
    conn: asyncpg.Connection,
    account_id: UUID,
    thread_id: str,
    *,
    marketplace_id: str,
    region: str,
    amazon_order_id: str | None,
    subject: str,
    at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO threads (account_id, thread_id, marketplace_id, region, amazon_order_id, subject,
               first_message_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (account_id, thread_id) DO UPDATE
           SET amazon_order_id = coalesce(threads.amazon_order_id, EXCLUDED.amazon_order_id),
               first_message_at = least(threads.first_message_at, EXCLUDED.first_message_at)""",
        account_id,
        thread_id,
        marketplace_id,
        region,
        amazon_order_id,
        subject,
        at,
    )


async def insert_message(
    conn: asyncpg.Connection,
    account_id: UUID,
    thread_id: str,
    *,
    kind: str,
    message_id: str,
    at: datetime,
    subject: str | None,
    body: str,
) -> bool:
    """True if the message is new (a message seen before changes nothing)."""
    inserted = await conn.fetchval(
        """INSERT INTO thread_messages (account_id, thread_id, kind, message_id, at, subject, body)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING true""",
        account_id,
        thread_id,
        kind,
        message_id,
        at,
        subject,
        body,
    )
    return bool(inserted)


async def insert_mark(
    conn: asyncpg.Connection, account_id: UUID, thread_id: str, *, mark_id: str, at: datetime
) -> bool:
    """True if the mark is new (the same mark seen before changes nothing)."""
    inserted = await conn.fetchval(
        """INSERT INTO thread_marks (account_id, thread_id, mark_id, at) VALUES ($1, $2, $3, $4)
           ON CONFLICT DO NOTHING RETURNING true""",
        account_id,
        thread_id,
        mark_id,
        at,
    )
    return bool(inserted)


async def has_thread_marks(conn: asyncpg.Connection, schema: str) -> bool:
    """Whether the generation's schema has the timeline tables (generations built before them do not)."""
    return bool(
        await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM information_schema.tables
                              WHERE table_schema = $1 AND table_name = 'thread_marks')""",
            schema,
        )
    )


async def thread_marketplace(conn: asyncpg.Connection, account_id: UUID, thread_id: str) -> str | None:
    """The thread's marketplace; None until its first buyer message has arrived."""
    value = await conn.fetchval(
        "SELECT marketplace_id FROM threads WHERE account_id = $1 AND thread_id = $2", account_id, thread_id
    )
    return str(value) if value is not None else None


async def thread_timeline(conn: asyncpg.Connection, account_id: UUID, thread_id: str) -> list[Entry]:
    """Every buyer message, seller reply and mark of the thread (unordered: the domain sorts them)."""
    rows = await conn.fetch(
        """SELECT CASE kind WHEN 'buyer' THEN 'buyer' ELSE 'reply' END AS kind, message_id AS entry_id, at
           FROM thread_messages WHERE account_id = $1 AND thread_id = $2
           UNION ALL
           SELECT 'mark', mark_id, at FROM thread_marks WHERE account_id = $1 AND thread_id = $2""",
        account_id,
        thread_id,
    )
    return [Entry(r["entry_id"], r["kind"], r["at"]) for r in rows]


async def replace_cycles(
    conn: asyncpg.Connection, account_id: UUID, thread_id: str, *, marketplace_id: str, waits: Sequence[Wait]
) -> None:
    """The thread's waits are exactly ``waits`` afterwards (delete and insert: the rows carry nothing else)."""
    await conn.execute("DELETE FROM response_cycles WHERE account_id = $1 AND thread_id = $2", account_id, thread_id)
    await conn.executemany(
        """INSERT INTO response_cycles (account_id, thread_id, opened_by, marketplace_id, started_at, deadline,
               closed_at, closed_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        [
            (account_id, thread_id, w.opened_by, marketplace_id, w.started_at, w.deadline, w.closed_at, w.closed_by)
            for w in waits
        ],
    )


async def open_cycle(conn: asyncpg.Connection, account_id: UUID, thread_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT * FROM response_cycles WHERE account_id = $1 AND thread_id = $2 AND closed_at IS NULL
           ORDER BY started_at DESC LIMIT 1 FOR UPDATE""",
        account_id,
        thread_id,
    )


async def start_cycle(
    conn: asyncpg.Connection,
    account_id: UUID,
    thread_id: str,
    *,
    opened_by: str,
    marketplace_id: str,
    started_at: datetime,
    deadline: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO response_cycles (account_id, thread_id, opened_by, marketplace_id, started_at, deadline)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
        account_id,
        thread_id,
        opened_by,
        marketplace_id,
        started_at,
        deadline,
    )


async def close_cycle(
    conn: asyncpg.Connection, account_id: UUID, thread_id: str, *, opened_by: str, closed_at: datetime, closed_by: str
) -> None:
    await conn.execute(
        """UPDATE response_cycles SET closed_at = $4, closed_by = $5
           WHERE account_id = $1 AND thread_id = $2 AND opened_by = $3""",
        account_id,
        thread_id,
        opened_by,
        closed_at,
        closed_by,
    )


async def cycles_for(
    conn: asyncpg.Connection, account_id: UUID, marketplaces: list[str] | None, since: datetime, as_of: datetime
) -> list[Cycle]:
    """Waits that matter at ``as_of``: open then (started, not closed by then) or with a deadline since ``since``."""
    rows = await conn.fetch(
        """SELECT thread_id, marketplace_id, started_at, deadline, closed_at, closed_by FROM response_cycles
           WHERE account_id = $1 AND ($2::text[] IS NULL OR marketplace_id = ANY($2))
             AND started_at <= $4
             AND (deadline > $3 OR closed_at IS NULL OR closed_at > $4)""",
        account_id,
        marketplaces,
        since,
        as_of,
    )
    return [
        Cycle(r["thread_id"], r["marketplace_id"], r["started_at"], r["deadline"], r["closed_at"], r["closed_by"])
        for r in rows
    ]


async def threads_by_id(conn: asyncpg.Connection, account_id: UUID, thread_ids: list[str]) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT * FROM threads WHERE account_id = $1 AND thread_id = ANY($2::text[])", account_id, thread_ids
    )
    return {r["thread_id"]: r for r in rows}
