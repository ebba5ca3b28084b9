"""Applying a consumer batch, and the fallback when it fails: the batch at once (no savepoint; a failure
rolls its whole transaction back), then, in a new transaction, event by event, each in a savepoint: a
failing event is retried with backoff and then given up (dead-lettered by the caller), the rest applied."""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

import asyncpg

from unified_shared.consumer_apply import HandlerTable, PoisonEvent, ReceivedEvent
from unified_shared.metrics import CONSUMER_RETRIES

log = logging.getLogger("unified_shared.consumer")

# Errors that mean "the database is unreachable" or "try the whole batch again", not "this event is bad".
RETRY_BATCH_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    ConnectionError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)


class BatchFailed(Exception):
    """A batch failed as a whole (not for a retryable reason): its transaction is rolled back and the batch
    applied again event by event."""


async def apply_at_once(conn: asyncpg.Connection, table: HandlerTable, events: list[ReceivedEvent], name: str) -> None:
    try:
        await table.apply(conn, events)
    except RETRY_BATCH_ERRORS:
        raise
    except Exception as exc:
        log.warning(
            "batch failed; applying its events one by one",
            extra={"consumer": name, "events": len(events), "error": f"{type(exc).__name__}: {exc}"},
        )
        raise BatchFailed from exc


async def apply_one_by_one(
    conn: asyncpg.Connection,
    table: HandlerTable,
    events: list[ReceivedEvent],
    name: str,
    *,
    max_attempts: int,
    backoff_base_s: float,
) -> dict[UUID, str]:
    """Each event in a savepoint; returns {event ID: reason} of those given up."""
    failed: dict[UUID, str] = {}
    for received in events:
        reason = await _apply_one(conn, table, received, name, max_attempts=max_attempts, backoff_base_s=backoff_base_s)
        if reason is not None:
            failed[UUID(str(received.event_id))] = reason
    return failed


async def _apply_one(
    conn: asyncpg.Connection,
    table: HandlerTable,
    received: ReceivedEvent,
    name: str,
    *,
    max_attempts: int,
    backoff_base_s: float,
) -> str | None:
    last_error = ""
    for attempt in range(1, max_attempts + 1):
        try:
            async with conn.transaction():  # savepoint: a failed attempt leaves nothing behind
                await table.apply(conn, [received])
            return None
        except RETRY_BATCH_ERRORS:
            raise
        except PoisonEvent as exc:
            return f"rejected: {exc}"
        except Exception as exc:  # a handler bug or a transient conflict: retry, then dead-letter
            last_error = f"{type(exc).__name__}: {exc}"
            if attempt < max_attempts:
                CONSUMER_RETRIES.labels(name).inc()
                await asyncio.sleep(backoff_base_s * 2 ** (attempt - 1))
    return last_error
