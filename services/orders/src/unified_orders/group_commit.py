"""Group commit: requests of one key (orders: one per instance) that arrive while its units of work are busy
go together in the next one.

Why: a single-order command pays ~5 round trips and a WAL flush for one order. With many clients posting one
order each, that fixed cost, not the orders, set the pace: 32 clients gained only ~2x over one. Here a
request that finds fewer than ``parallel`` units of its key running is applied at once (a lone client waits
for no company); requests that arrive while ``parallel`` units are running queue, and the next unit to start
takes them all (up to ``limit`` items) as one batch, each request answered with its own slice of the results.
Keys never wait for each other.

A request cancelled before its batch began is dropped (as a request cancelled before its transaction began
was); once taken, its items are applied with the others. A refusal of one item is that item's result only.
When a batch fails as a whole (its transaction rolled back: a database error, a conflict after the retries),
each of its requests is applied again alone, so one request's failure never becomes its neighbours'.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from prometheus_client import Counter, Histogram

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741 (an item)
R = TypeVar("R")

UNIT_ITEMS = Histogram(
    "group_commit_unit_items",
    "Items applied together in one unit of work by a group commit",
    ["group"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 100, 200),
)
UNITS_SPLIT = Counter(
    "group_commit_units_split_total",
    "Shared units that failed whole and were applied again request by request",
    ["group"],
)


@dataclass
class _Request(Generic[I, R]):
    items: Sequence[I]
    answer: asyncio.Future[list[R]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


@dataclass
class _Queue(Generic[I, R]):
    """A key's requests not yet taken, and how many of its drains are running."""

    waiting: list[_Request[I, R]] = field(default_factory=list)
    drains: int = 0


class GroupCommit(Generic[K, I, R]):
    """``apply(key, items)`` returns one result per item, in order; ``submit`` awaits its own items' results."""

    def __init__(
        self, apply: Callable[[K, list[I]], Awaitable[list[R]]], limit: int, parallel: int, name: str = "group"
    ) -> None:
        self._apply = apply
        self.name = name
        self.limit = limit
        self.parallel = parallel
        self._queues: dict[K, _Queue[I, R]] = {}
        self._drains: set[asyncio.Task[None]] = set()
        self.batches = 0  # units of work run (for tests and metrics)

    async def submit(self, key: K, items: Sequence[I]) -> list[R]:
        if not items:
            return []
        request: _Request[I, R] = _Request(items)
        queue = self._queues.setdefault(key, _Queue())
        queue.waiting.append(request)
        if queue.drains < self.parallel:  # else a running drain of the key takes it next
            queue.drains += 1
            # In a context of its own: a unit serves many requests, so it must not carry the first one's
            # request ID or trace (each item brings what it needs of its request).
            drain = asyncio.create_task(self._drain(key, queue), context=contextvars.Context())
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        return await request.answer

    def _take(self, queue: list[_Request[I, R]]) -> list[_Request[I, R]]:
        """The next batch: queued requests in arrival order while their items fit ``limit`` (at least one)."""
        taken: list[_Request[I, R]] = []
        size = 0
        while queue:
            if queue[0].answer.done():  # cancelled while queued: never applied
                queue.pop(0)
                continue
            if taken and size + len(queue[0].items) > self.limit:
                break
            request = queue.pop(0)
            taken.append(request)
            size += len(request.items)
        return taken

    async def _drain(self, key: K, queue: _Queue[I, R]) -> None:
        batch: list[_Request[I, R]] = []
        try:
            while batch := self._take(queue.waiting):
                self.batches += 1
                items = [item for r in batch for item in r.items]
                UNIT_ITEMS.labels(self.name).observe(len(items))
                try:
                    results = await self._apply(key, items)
                except Exception as exc:
                    if len(batch) == 1:
                        _answer(batch, exc)
                    else:  # nothing of it was kept: each member again alone, so a failure is only its own
                        UNITS_SPLIT.labels(self.name).inc()
                        await self._alone(key, batch)
                    continue
                start = 0
                for request in batch:
                    _answer([request], results[start : start + len(request.items)])
                    start += len(request.items)
        except BaseException as exc:  # cancelled (shutdown): nobody may wait forever
            _answer([*batch, *queue.waiting], RuntimeError(f"group commit stopped: {exc!r}"))
            raise
        finally:
            # No await between the empty take and this: a request arriving now starts a new drain.
            queue.drains -= 1
            if queue.drains == 0:
                del self._queues[key]

    async def _alone(self, key: K, batch: list[_Request[I, R]]) -> None:
        for request in batch:
            if request.answer.done():
                continue
            try:
                _answer([request], await self._apply(key, list(request.items)))
            except Exception as exc:
                _answer([request], exc)


def _answer(requests: Sequence[_Request[I, R]], outcome: list[R] | BaseException) -> None:
    for request in requests:
        if request.answer.done():
            continue
        if isinstance(outcome, BaseException):
            request.answer.set_exception(outcome)
        else:
            request.answer.set_result(outcome)
