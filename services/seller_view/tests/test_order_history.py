"""An order's status history: every step with its time (placed, status changes, refunds) on the order detail
endpoint, recorded once however often the events are delivered or replayed."""

from __future__ import annotations

import uuid

from unified_seller_view import store
from unified_seller_view.handlers import apply_event, table_for
from unified_shared.db import connect

from .scenario import Scenario
from .support import DE, US, as_received, create_readmodels, forget_step, publisher, running_view, utc


def _scenario() -> tuple[Scenario, str, str]:
    s = Scenario(uuid.uuid4())
    s.register()
    for m in (US, DE):
        s.participate(m, utc(2026, 9, 1, 9))
    shipped = s.place(US, utc(2026, 9, 10, 15, 30), "45.50", 2, "Pending")
    s.add(*s.change(shipped, "Unshipped", utc(2026, 9, 10, 16)))
    s.add(*s.change(shipped, "Shipped", utc(2026, 9, 11, 9)))
    s.add(*s.refund(shipped, "5.25", utc(2026, 9, 15, 10)))
    # An order whose change arrives before the order itself: its history is complete all the same.
    late = s.place(DE, utc(2026, 9, 12, 8), "80.00", 1, "Unshipped")
    placed = s.events.pop()
    s.add(*s.change(late, "Canceled", utc(2026, 9, 12, 9)))
    s.events.append(placed)
    return s, shipped.amazon_order_id, late.amazon_order_id


async def test_order_detail_shows_each_status_with_its_time_and_refunds(make_db, kafka_bootstrap) -> None:
    s, shipped, late = _scenario()
    async with running_view(make_db, kafka_bootstrap) as view, publisher(make_db, kafka_bootstrap) as pub:
        await pub.publish(*s.events)
        await view.caught_up()
        detail = await view.json(s.account_id, f"orders/{shipped}")
        assert detail["amazon_order_id"] == shipped and detail["order_status"] == "Shipped"
        assert [(h["kind"], h["at"], h["from_status"], h["status"]) for h in detail["status_history"]] == [
            ("placed", "2026-09-10T15:30:00+00:00", None, "Pending"),
            ("status_changed", "2026-09-10T16:00:00+00:00", "Pending", "Unshipped"),
            ("status_changed", "2026-09-11T09:00:00+00:00", "Unshipped", "Shipped"),
            ("refunded", "2026-09-15T10:00:00+00:00", None, None),
        ]
        assert detail["status_history"][-1]["refund"] == {"currency_code": "USD", "amount": "5.25"}
        assert detail["refunds"][0]["amount"] == "5.25"

        other = await view.json(s.account_id, f"orders/{late}")
        assert [(h["kind"], h["status"]) for h in other["status_history"]] == [
            ("placed", "Unshipped"),
            ("status_changed", "Canceled"),
        ]

        # A member scoped to DE does not see the US order (404, not its data); bad input is a 4xx problem.
        de_only = view.token(s.account_id, role="member", permissions=["orders"], marketplaces=[DE])
        hidden = await view.get(s.account_id, f"orders/{shipped}", de_only)
        assert hidden.status_code == 404 and "45.50" not in hidden.text and shipped not in hidden.json()["detail"]
        assert (await view.get(s.account_id, f"orders/{late}", de_only)).status_code == 200
        reports_only = view.token(s.account_id, role="member", permissions=["reports"])
        assert (await view.get(s.account_id, f"orders/{shipped}", reports_only)).status_code == 403
        bad = await view.get(s.account_id, "orders/not%20an%20id")
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
        assert "amazon_order_id" in bad.text


async def test_replaying_the_history_twice_adds_no_history_row(fresh_db: str) -> None:
    """Without the consumer's deduplication: the batched handlers and the per-event path, each given the
    whole history twice, keep exactly one row per order event."""
    s, _, _ = _scenario()
    received = as_received([e for _, e in s.events])
    order_events = sum(1 for r in received if type(r.event).__module__.endswith("orders"))
    assert order_events == 6
    conn = await connect(fresh_db)
    try:
        await create_readmodels(conn, "batched", "per_event")
        table = table_for("batched")
        for _ in range(2):
            async with conn.transaction():
                await table.apply(conn, received)
            async with conn.transaction():
                await conn.execute("SET LOCAL search_path TO per_event, public")
                for r in received:
                    await apply_event(conn, r.event, event_id=r.event_id, sequence=r.envelope.sequence)
            for schema in ("batched", "per_event"):
                count = await conn.fetchval(f"SELECT count(*) FROM {schema}.order_status_history")
                assert count == order_events, schema
        assert (await store.dump(conn, "batched")).count("order_status_history") == 1
        batched = await conn.fetch("SELECT * FROM batched.order_status_history ORDER BY event_id")
        per_event = await conn.fetch("SELECT * FROM per_event.order_status_history ORDER BY event_id")
        assert [dict(r) for r in batched] == [dict(r) for r in per_event]
    finally:
        await conn.close()


async def test_the_upgrade_adds_the_history_table_to_a_generation_built_before_it(make_db) -> None:
    from unified_seller_view import generations as gens
    from unified_seller_view.runtime import MIGRATIONS
    from unified_shared.db import SHARED_COMPONENT, apply_migrations

    dsn = await make_db()
    conn = await connect(dsn)
    try:
        await apply_migrations(conn, [SHARED_COMPONENT, MIGRATIONS])
        old = await gens.create_generation(conn, f"sv-old-{uuid.uuid4().hex[:8]}", {}, "live")
        # the generation as the read model made it before step 003 (order_status_history) existed
        await conn.execute(f'DROP TABLE "{old.schema}".order_status_history')
        await forget_step(conn, old.schema, 3)
        applied = await gens.upgrade_generations(conn)
        assert applied == [f"{old.schema}:003_order_status_history"], applied
        assert (await gens.generation(conn, old.number)).ddl_checksum == gens.ddl_checksum()  # still current
        columns = await conn.fetchval(
            """SELECT count(*) FROM information_schema.columns
               WHERE table_schema = $1 AND table_name = 'order_status_history'""",
            old.schema,
        )
        assert columns == 10
    finally:
        await conn.close()
