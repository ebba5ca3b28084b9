"""The threads tables in memory, for handler tests over ``unified_shared.uow.FakeUnits`` (no database)."""

from __future__ import annotations

from uuid import UUID

from unified_messages.store import StoredEntry, Thread, ThreadQuery


class FakeMessagesStore:
    """Same answers as ``PgMessagesStore`` for what the handlers ask (locks are no-ops: one caller at a time)."""

    def __init__(self) -> None:
        self.threads: dict[tuple[UUID, str], Thread] = {}
        self.entries: dict[tuple[UUID, str], tuple[int, StoredEntry]] = {}

    async def get_thread(self, account_id: UUID, thread_id: str, *, for_update: bool = False) -> Thread | None:
        return self.threads.get((account_id, thread_id))

    async def get_entry(self, account_id: UUID, entry_id: str) -> StoredEntry | None:
        found = self.entries.get((account_id, entry_id))
        return found[1] if found else None

    async def thread_entries(self, account_id: UUID, thread_id: str) -> list[StoredEntry]:
        rows = [(e.at, n, e.entry_id, e) for (a, _), (n, e) in self.entries.items() if a == account_id]
        return [e for *_, e in sorted(r for r in rows if r[3].thread_id == thread_id)]

    async def insert_entry(self, account_id: UUID, entry: StoredEntry) -> None:
        assert (account_id, entry.entry_id) not in self.entries, "primary key violated"
        self.entries[(account_id, entry.entry_id)] = (len(self.entries), entry)

    async def save_thread(self, account_id: UUID, thread: Thread) -> None:
        self.threads[(account_id, thread.thread_id)] = thread

    async def list_threads(self, account_id: UUID, query: ThreadQuery) -> list[Thread]:
        rows = sorted(
            (
                t
                for (a, _), t in self.threads.items()
                if a == account_id
                and (query.state is None or t.state == query.state)
                and (query.marketplace_ids is None or t.marketplace_id in query.marketplace_ids)
                and (query.after_key is None or (t.sort_at, t.thread_id) > query.after_key)
            ),
            key=lambda t: (t.sort_at, t.thread_id),
        )
        return rows[: query.limit]
