"""Thread timelines in the read model: what the consumer handler does with a generation built before them."""

from __future__ import annotations

import uuid
from datetime import timedelta

from unified_seller_view import generations as gens
from unified_seller_view.handlers import handler_for
from unified_seller_view.runtime import MIGRATIONS
from unified_shared.consumer import ReceivedEvent
from unified_shared.contracts import messages
from unified_shared.db import SHARED_COMPONENT, apply_migrations, create_pool
from unified_shared.envelope import Envelope
from unified_shared.events import Event
from unified_shared.topics import BUYER_MESSAGES

from .support import DE, utc


def _received(event: Event, offset: int) -> ReceivedEvent:
    envelope = Envelope(uuid.uuid4(), "/services/test-writer", event.NAME, utc(2026, 10, 20), "thread-t", "key")
    return ReceivedEvent(envelope, event, BUYER_MESSAGES, 0, offset)


async def test_a_generation_without_timeline_tables_keeps_consuming_until_rebuilt(make_db) -> None:
    """The serving process runs the new code against the live generation while a rebuild builds the next one:
    a schema made from the previous readmodel.sql (no thread_marks) must not dead-letter message events."""
    pool = await create_pool(await make_db())
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, [SHARED_COMPONENT, MIGRATIONS])
            old = await gens.create_generation(conn, "sv-old", {}, "live")
            new = await gens.create_generation(conn, "sv-old", {}, "building")
            await conn.execute(f'DROP TABLE "{old.schema}".thread_marks')
        account, t0 = uuid.uuid4(), utc(2026, 10, 20, 10)
        common = {"account_id": account, "marketplace_id": DE, "thread_id": "t", "region": "EU"}
        history: list[Event] = [
            messages.BuyerMessageReceived(**common, message_id="m1", received_at=t0, subject="s", body="b"),
            messages.BuyerMessageReceived(
                **common, message_id="m2", received_at=t0 + timedelta(hours=3), subject="s", body="b"
            ),
            messages.MarkedNoResponseNeeded(**common, at=t0 + timedelta(hours=2)),
        ]
        waits = {}
        for gen in (old, new):
            handle = handler_for(gen.schema)
            for offset, event in enumerate(history):
                async with pool.acquire() as conn, conn.transaction():
                    await handle(conn, _received(event, offset))
            async with pool.acquire() as conn:
                rows = await conn.fetch(
                    f'SELECT opened_by, closed_at FROM "{gen.schema}".response_cycles ORDER BY opened_by'
                )
            waits[gen.schema] = [(r["opened_by"], r["closed_at"]) for r in rows]
        # The old generation keeps its arrival-order answer (the mark closed the only wait) until a rebuild;
        # the current one follows the timeline (the mark closed m1's wait, m2 waits since 13:00).
        assert waits[old.schema] == [("m1", t0 + timedelta(hours=2))]
        assert waits[new.schema] == [("m1", t0 + timedelta(hours=2)), ("m2", None)]
    finally:
        await pool.close()
