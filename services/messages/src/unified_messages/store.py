"""SQL for the messages service's own tables (``threads``, ``thread_entries``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Protocol
from uuid import UUID

import asyncpg

from unified_messages.domain import ThreadStatus
from unified_shared import state_rows
from unified_shared.thread_timeline import Entry, EntryKind


def stream_id(account_id: UUID, thread_id: str) -> str:
    """One event stream per thread (and per account: thread IDs of two accounts never mix)."""
    return f"thread:{account_id}:{thread_id}"


@dataclass(frozen=True, slots=True)
class Thread:
    """One row of ``threads``: what the list and the thread view show without reading the timeline."""

    thread_id: str
    marketplace_id: str
    amazon_order_id: str | None
    subject: str
    state: str
    awaiting_since: datetime | None
    reply_deadline: datetime | None
    last_activity_at: datetime
    sort_at: datetime
    buyer_messages: int
    replies: int
    version: int

    @staticmethod
    def of(head: Thread | ThreadHead, status: ThreadStatus, entries: Sequence[StoredEntry], version: int) -> Thread:
        """The thread after a command: its head (ID, marketplace, order, subject), its status recomputed from
        its whole timeline, its counts, and its stream version. Listed by reply deadline, else last activity."""
        return Thread(
            **{f.name: getattr(head, f.name) for f in fields(ThreadHead)},
            state=status.state,
            awaiting_since=status.awaiting_since,
            reply_deadline=status.reply_deadline,
            last_activity_at=status.last_at,
            sort_at=status.reply_deadline or status.last_at,
            buyer_messages=sum(1 for e in entries if e.kind == "buyer"),
            replies=sum(1 for e in entries if e.kind == "reply"),
            version=version,
        )


@dataclass(frozen=True, slots=True)
class ThreadQuery:
    """A page of threads: by ``state``, in ``marketplace_ids`` (None = all), after the keyset position."""

    state: str | None
    marketplace_ids: Sequence[str] | None
    after_key: tuple[datetime, str] | None
    limit: int


@dataclass(frozen=True, slots=True)
class ThreadHead:
    """What a thread's first message fixes: where it is and what it is about."""

    thread_id: str
    marketplace_id: str
    amazon_order_id: str | None
    subject: str


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One row of ``thread_entries``: a point of the timeline with what was said and by whom."""

    entry_id: str
    thread_id: str
    kind: EntryKind
    at: datetime
    subject: str | None
    body: str | None
    amazon_order_id: str | None
    actor: UUID | None

    def entry(self) -> Entry:
        return Entry(self.entry_id, self.kind, self.at)


def _thread(row: asyncpg.Record) -> Thread:
    """A ``threads`` row: its columns after ``account_id`` bear the fields' names (state_rows)."""
    return state_rows.from_row(Thread, row)


def _entry(row: asyncpg.Record) -> StoredEntry:
    return state_rows.from_row(StoredEntry, row)


class MessagesStore(Protocol):
    """What the handlers need of the threads tables (PostgreSQL here; in memory in the unit tests)."""

    async def get_thread(self, account_id: UUID, thread_id: str, *, for_update: bool = False) -> Thread | None: ...
    async def get_entry(self, account_id: UUID, entry_id: str) -> StoredEntry | None: ...
    async def thread_entries(self, account_id: UUID, thread_id: str) -> list[StoredEntry]: ...
    async def insert_entry(self, account_id: UUID, entry: StoredEntry) -> None: ...
    async def save_thread(self, account_id: UUID, thread: Thread) -> None: ...
    async def list_threads(self, account_id: UUID, query: ThreadQuery) -> list[Thread]: ...


class PgMessagesStore:
    """The threads tables as seen by one connection (and its transaction)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def get_thread(self, account_id: UUID, thread_id: str, *, for_update: bool = False) -> Thread | None:
        sql = "SELECT * FROM threads WHERE account_id = $1 AND thread_id = $2"
        row = await self.conn.fetchrow(sql + (" FOR UPDATE" if for_update else ""), account_id, thread_id)
        return _thread(row) if row else None

    async def get_entry(self, account_id: UUID, entry_id: str) -> StoredEntry | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM thread_entries WHERE account_id = $1 AND entry_id = $2", account_id, entry_id
        )
        return _entry(row) if row else None

    async def thread_entries(self, account_id: UUID, thread_id: str) -> list[StoredEntry]:
        rows = await self.conn.fetch(
            "SELECT * FROM thread_entries WHERE account_id = $1 AND thread_id = $2 ORDER BY at, recorded_at, entry_id",
            account_id,
            thread_id,
        )
        return [_entry(r) for r in rows]

    async def insert_entry(self, account_id: UUID, entry: StoredEntry) -> None:
        await self.conn.execute(
            """INSERT INTO thread_entries (account_id, entry_id, thread_id, kind, at, subject, body,
                                          amazon_order_id, actor)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
            account_id,
            *state_rows.values(entry),
        )

    async def save_thread(self, account_id: UUID, thread: Thread) -> None:
        await self.conn.execute(
            """INSERT INTO threads (account_id, thread_id, marketplace_id, amazon_order_id, subject, state,
                                    awaiting_since, reply_deadline, last_activity_at, sort_at, buyer_messages,
                                    replies, stream_version)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
               ON CONFLICT (account_id, thread_id) DO UPDATE SET
                   amazon_order_id = EXCLUDED.amazon_order_id, state = EXCLUDED.state,
                   awaiting_since = EXCLUDED.awaiting_since, reply_deadline = EXCLUDED.reply_deadline,
                   last_activity_at = EXCLUDED.last_activity_at, sort_at = EXCLUDED.sort_at,
                   buyer_messages = EXCLUDED.buyer_messages, replies = EXCLUDED.replies,
                   stream_version = EXCLUDED.stream_version""",
            account_id,
            *state_rows.values(thread),
        )

    async def list_threads(self, account_id: UUID, query: ThreadQuery) -> list[Thread]:
        """Threads in (sort_at, thread_id) order after the keyset position; ``marketplace_ids`` None = all."""
        state, marketplace_ids, after_key = query.state, query.marketplace_ids, query.after_key
        args: list[object] = [account_id]
        where = ["account_id = $1"]
        if state is not None:
            args.append(state)
            where.append(f"state = ${len(args)}")
        if marketplace_ids is not None:
            args.append(list(marketplace_ids))
            where.append(f"marketplace_id = ANY(${len(args)}::text[])")
        if after_key is not None:
            args += [after_key[0], after_key[1]]
            where.append(f"(sort_at, thread_id) > (${len(args) - 1}, ${len(args)})")
        args.append(query.limit)
        sql = f"SELECT * FROM threads WHERE {' AND '.join(where)} ORDER BY sort_at, thread_id LIMIT ${len(args)}"
        return [_thread(r) for r in await self.conn.fetch(sql, *args)]
