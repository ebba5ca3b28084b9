"""The partition keys an outbox relay holds back: a key whose row was quarantined waits (its later rows are
held behind it) until an operator releases or skips that row; then its held rows go out in position order
and the key flows again. Every other key goes on meanwhile."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from unified_shared import outbox_quarantine as quarantine
from unified_shared.eventstore import StoredEvent
from unified_shared.metrics import OUTBOX_PUBLISHED, OUTBOX_QUARANTINED
from unified_shared.outbox_send import ROW_FAULTS, Outgoing

log = logging.getLogger("unified_shared.outbox")

RELEASE_CHECK_S = 1.0  # how often a relay with quarantined keys looks for an operator's release

Send = Callable[[Outgoing], Awaitable["asyncio.Future[Any]"]]


class BlockedKeys:
    def __init__(self, relay: str) -> None:
        self.relay = relay
        self._keys: set[str] = set()
        self._loaded = False
        self._release_checked = 0.0

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    async def hold(self, conn: asyncpg.Connection, stored: Outgoing) -> None:
        """A row of a blocked key: into the quarantine behind the failed one."""
        await quarantine.put(conn, self.relay, stored, "held", "behind a quarantined event of its key")

    async def fail(self, conn: asyncpg.Connection, stored: Outgoing, reason: str) -> None:
        """A row that cannot be published: quarantined, and its key blocked from now on."""
        await quarantine.put(conn, self.relay, stored, "failed", reason)
        self._keys.add(stored.partition_key)
        OUTBOX_QUARANTINED.labels(self.relay).inc()
        log.error(
            "outbox event quarantined: its partition key waits, every other key goes on",
            extra={
                "relay": self.relay,
                "position": stored.position,
                "event_id": str(stored.event_id),
                "event_type": stored.event_type,
                "partition_key": stored.partition_key,
                "reason": reason,
            },
        )

    async def drain(self, conn: asyncpg.Connection, send: Send, *, force: bool = False) -> None:
        """Publish, in position order, the quarantined rows of keys no longer blocked by a failed row
        (released by an operator, or the failed one skipped); a key with nothing left flows again."""
        if not self._loaded:
            self._keys = await quarantine.blocked_keys(conn, self.relay)
            self._loaded = True
        now = time.monotonic()
        if not self._keys or (not force and now - self._release_checked < RELEASE_CHECK_S):
            return
        self._release_checked = now
        for key in sorted(self._keys):
            waiting = await quarantine.rows(conn, self.relay, key=key)
            sent: list[tuple[StoredEvent, asyncio.Future[Any]]] = []
            for q in waiting:
                if q.status == "failed":
                    break
                try:
                    sent.append((q.stored, await send(Outgoing.of(q.stored))))
                except ROW_FAULTS as exc:
                    await quarantine.mark(conn, self.relay, q.position, "failed", repr(exc))
                    break
            await asyncio.gather(*(f for _, f in sent))
            await quarantine.remove(conn, self.relay, [s.position for s, _ in sent])
            OUTBOX_PUBLISHED.labels(self.relay).inc(len(sent))
            if len(sent) == len(waiting):
                self._keys.discard(key)
                log.info("outbox quarantine of a key drained", extra={"relay": self.relay, "published": len(sent)})
