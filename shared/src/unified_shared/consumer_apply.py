"""How a consumer applies a batch: a table {event type: handler}, each handler given the batch's new events of
its types at once (so it can apply them set-based), in an order that cannot change the result.

Order: handlers run in the table's order, each with its events in log order. Moving an event of a later
group ahead of an earlier group's event could change the outcome only if both touch the same thing, so each
group names what its events touch (``Apply.key``, default the event's partition key, i.e. the account): when
an event would overtake an event with the same key of a later group, the batch is cut there and the rest
applied after. Handlers of different keys must be independent (they are: rows keyed by what events name).
The result is therefore the same whatever the batch boundaries: a replay or a rebuild in other batches gives
the same rows as the live consumer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from unified_shared.envelope import Envelope
from unified_shared.events import Event


class PoisonEvent(Exception):
    """Raised by a handler for an event that can never be applied: it goes to the DLQ without retries."""


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """``event_key``: the event's partition key when already known (the consumer checks it against the
    record's key while parsing), so that grouping a batch does not compute it again."""

    envelope: Envelope
    event: Event
    topic: str
    partition: int
    offset: int
    event_key: str | None = None

    @property
    def event_id(self) -> Any:
        return self.envelope.id


Handler = Callable[[asyncpg.Connection, ReceivedEvent], Awaitable[None]]
BatchHandler = Callable[[asyncpg.Connection, Sequence[ReceivedEvent]], Awaitable[None]]
Prepare = Callable[[asyncpg.Connection], Awaitable[None]]


def partition_key(received: ReceivedEvent) -> Hashable:
    known = received.event_key
    return known if known is not None else received.event.partition_key()


@dataclass(frozen=True, eq=False)
class Apply:
    """One group of event types: ``handler`` receives the group's new events of a batch, in log order.
    ``key``: what an event touches (events with equal keys keep their log order across groups)."""

    handler: BatchHandler
    key: Callable[[ReceivedEvent], Hashable] = partition_key


def per_event(handler: Handler) -> Apply:
    """A per-event handler as a group: its events are applied one after the other, in log order."""

    async def apply(conn: asyncpg.Connection, events: Sequence[ReceivedEvent]) -> None:
        for received in events:
            await handler(conn, received)

    return Apply(apply)


def _as_apply(entry: Apply | BatchHandler) -> Apply:
    return entry if isinstance(entry, Apply) else Apply(entry)


@dataclass(frozen=True)
class HandlerTable:
    """A consumer's handlers. ``by_type``: {Event subclass: Apply or batch handler}; types sharing one Apply
    object form one group (their events keep their log order among themselves). ``default`` applies types
    not listed (None: they are no-ops). ``prepare`` runs once per batch before any handler (settings,
    search_path)."""

    by_type: Mapping[type[Event], Apply | BatchHandler] = field(default_factory=dict)
    default: Apply | None = None
    prepare: Prepare | None = None

    def __post_init__(self) -> None:
        groups: dict[type[Event], Apply] = {}
        cache: dict[int, Apply] = {}
        for event_type, entry in self.by_type.items():
            groups[event_type] = cache.setdefault(id(entry), _as_apply(entry))
        ranks: dict[Apply, int] = {}
        for group in groups.values():
            ranks.setdefault(group, len(ranks))
        if self.default is not None:
            ranks.setdefault(self.default, len(ranks))
        object.__setattr__(self, "_groups", groups)
        object.__setattr__(self, "_ranks", ranks)

    @classmethod
    def of(cls, handler: Handler) -> HandlerTable:
        """Every event through one per-event handler, in log order (what consumers did before batches)."""
        return cls(default=per_event(handler))

    def group_of(self, received: ReceivedEvent) -> Apply | None:
        groups: dict[type[Event], Apply] = self._groups  # type: ignore[attr-defined]
        for klass in type(received.event).__mro__:
            found = groups.get(klass)
            if found is not None:
                return found
        return self.default

    def plan(self, events: Sequence[ReceivedEvent]) -> list[list[tuple[Apply, list[ReceivedEvent]]]]:
        """Segments of (group, events) to apply in this order; see the module's docstring."""
        ranks: dict[Apply, int] = self._ranks  # type: ignore[attr-defined]
        segments: list[dict[Apply, list[ReceivedEvent]]] = []
        current: dict[Apply, list[ReceivedEvent]] = {}
        latest: dict[Hashable, int] = {}  # key -> highest group rank it has in the current segment
        for received in events:
            group = self.group_of(received)
            if group is None:
                continue
            rank = ranks[group]
            key = group.key(received)
            if latest.get(key, -1) > rank:
                segments.append(current)
                current, latest = {}, {}
            current.setdefault(group, []).append(received)
            latest[key] = max(latest.get(key, -1), rank)
        if current:
            segments.append(current)
        return [sorted(seg.items(), key=lambda item: ranks[item[0]]) for seg in segments]

    async def apply(self, conn: asyncpg.Connection, events: Sequence[ReceivedEvent]) -> None:
        if self.prepare is not None:
            await self.prepare(conn)
        for segment in self.plan(events):
            for group, group_events in segment:
                await group.handler(conn, group_events)
