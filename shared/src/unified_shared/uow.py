"""The command unit of work: one transaction per command, its events appended at the expected version
(their outbox rows in the same transaction, see ``eventstore``), and the outbox relay woken after the commit.

A handler asks its ``Units`` for ``command()`` (writes) or ``query()`` (reads); inside, ``uow.store`` is the
service's store bound to the unit's connection. Production wires ``PgUnits``; unit tests wire ``FakeUnits``
over an in-memory store (same handler code, no broker, no database).

    async with self.units.command() as uow:
        order = await uow.store.get_order(account, order_id, for_update=True)
        ...                                   # domain decides
        await uow.store.save_order(account, order)
        await uow.append(stream, order.version, [event])   # last: see eventstore's append lock
    # committed here; the relay is woken if anything was appended
"""

from __future__ import annotations

import contextlib
import copy
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

import asyncpg

from unified_shared import eventstore
from unified_shared.db import session_free
from unified_shared.events import Event
from unified_shared.eventstore import ConcurrencyError, StreamAppend

# A command that lost a race with another one on the same rows or stream: decide again on the winner's result.
RACES: tuple[type[Exception], ...] = (ConcurrencyError, asyncpg.DeadlockDetectedError)

S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)


class UnitOfWork(ABC, Generic[S_co]):
    """What a command sees: its store, a per-key lock, and the event-store append."""

    @property
    @abstractmethod
    def store(self) -> S_co: ...

    @abstractmethod
    async def lock(self, key: str) -> None:
        """Serialize the commands of one key (e.g. one thread) until the commit; other keys run side by side."""

    @abstractmethod
    async def append_streams(self, appends: Sequence[StreamAppend]) -> None:
        """Append to many streams, each at its expected version (``ConcurrencyError`` if one moved on)."""

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        *,
        occurred_at: datetime | None = None,
    ) -> None:
        await self.append_streams([StreamAppend(stream_id, expected_version, events, occurred_at)])


class Units(Protocol[S_co]):
    """Where handlers get their units of work from (the only thing they know of the database)."""

    def command(self) -> contextlib.AbstractAsyncContextManager[UnitOfWork[S_co]]: ...

    def query(self) -> contextlib.AbstractAsyncContextManager[S_co]: ...


# -- PostgreSQL ---------------------------------------------------------------------------------------


class PgUnitOfWork(UnitOfWork[S]):
    def __init__(self, conn: asyncpg.Connection, store: S) -> None:
        self.conn = conn
        self._store = store
        self.appended = False

    @property
    def store(self) -> S:
        return self._store

    async def lock(self, key: str) -> None:
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)

    async def append_streams(self, appends: Sequence[StreamAppend]) -> None:
        await eventstore.append_streams(self.conn, appends)
        self.appended = self.appended or any(a.events for a in appends)


class PgUnits(Generic[S]):
    """Units over a pool: ``store`` binds the service's store to a connection; ``notify`` wakes the relay."""

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        store: Callable[[asyncpg.Connection], S],
        notify: Callable[[], None],
    ) -> None:
        self._pool = pool
        self._store = store
        self._notify = notify

    # A unit's work is transaction-scoped (its locks are ``pg_advisory_xact_lock``, its settings ``SET LOCAL``):
    # the connection goes back to the pool without the reset query (``db.session_free``).
    @contextlib.asynccontextmanager
    async def command(self) -> AsyncIterator[UnitOfWork[S]]:
        async with session_free(self._pool()) as conn:
            uow = PgUnitOfWork(conn, self._store(conn))
            async with conn.transaction():
                yield uow
        if uow.appended:  # after the commit: the relay must not look before the rows are visible
            self._notify()

    @contextlib.asynccontextmanager
    async def query(self) -> AsyncIterator[S]:
        async with session_free(self._pool()) as conn:
            yield self._store(conn)


# -- fakes for unit tests ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Appended:
    stream_id: str
    version: int  # of the event in its stream (1, 2, ...)
    event: Event
    occurred_at: datetime | None


class FakeUnitOfWork(UnitOfWork[S]):
    def __init__(self, units: FakeUnits[S]) -> None:
        self.units = units
        self.pending: list[Appended] = []
        self.locks: list[str] = []

    @property
    def store(self) -> S:
        return self.units.store

    async def lock(self, key: str) -> None:
        self.locks.append(key)

    async def append_streams(self, appends: Sequence[StreamAppend]) -> None:
        for a in appends:
            actual = self.units.version(a.stream_id) + sum(p.stream_id == a.stream_id for p in self.pending)
            if actual != a.expected_version:
                raise ConcurrencyError(a.stream_id, a.expected_version, actual)
        for a in appends:
            for i, event in enumerate(a.events):
                at = a.occurred_at if isinstance(a.occurred_at, datetime | None) else a.occurred_at[i]
                self.pending.append(Appended(a.stream_id, a.expected_version + i + 1, event, at))


class FakeUnits(Generic[S]):
    """In-memory units: one shared ``store`` (rolled back on an exception by restoring a deep copy), the
    committed ``events`` in append order, and how often the relay was woken (``notified``)."""

    def __init__(self, store: S) -> None:
        self.store = store
        self.events: list[Appended] = []
        self.commits = 0
        self.notified = 0

    def version(self, stream_id: str) -> int:
        return sum(a.stream_id == stream_id for a in self.events)

    @contextlib.asynccontextmanager
    async def command(self) -> AsyncIterator[UnitOfWork[S]]:
        before = copy.deepcopy(self.store)
        uow = FakeUnitOfWork(self)
        try:
            yield uow
        except BaseException:
            vars(self.store).clear()  # in place: tests keep their reference to the store
            vars(self.store).update(vars(before))
            raise
        self.commits += 1
        self.events.extend(uow.pending)
        if uow.pending:
            self.notified += 1

    @contextlib.asynccontextmanager
    async def query(self) -> AsyncIterator[S]:
        yield self.store
