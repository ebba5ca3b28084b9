"""The order of an order's events (order_versions.py): a total order, so the update an order row ends up
reflecting is the newest of the events it saw, whatever their arrival order or repetitions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from unified_seller_view.order_versions import (
    GROUPS,
    Version,
    apply_fields,
    change_fields,
    newer,
    of_row,
    version,
    version_columns,
)
from unified_shared.contracts import orders

T0 = datetime(2026, 9, 1, tzinfo=UTC)

events = st.lists(
    st.tuples(
        st.integers(0, 2).map(lambda h: T0 + timedelta(hours=h)),  # few instants: many ties
        st.one_of(st.none(), st.integers(0, 3)),
        st.integers(0, 2**128 - 1).map(lambda n: uuid.UUID(int=n)),
    ),
    min_size=1,
    max_size=8,
)


@given(events, st.randoms())
def test_the_newest_wins_whatever_the_arrival_order(history: list[tuple], rnd: object) -> None:
    versions = [version(*e) for e in history]
    arrivals = versions + versions[: len(versions) // 2]  # some delivered twice
    rnd.shuffle(arrivals)  # type: ignore[attr-defined]
    current: Version | None = None
    for v in arrivals:
        if current is None or newer(v, current):
            current = v
    assert current == max(versions)


def test_a_missing_sequence_or_an_old_row_ranks_lowest_among_ties() -> None:
    event = uuid.UUID(int=5)
    assert newer(version(T0, 0, event), version(T0, None, event))
    assert newer(
        version(T0, None, event), of_row({"last_update_date": T0, "version_sequence": None, "version_event_id": None})
    )
    assert not newer(version(T0, 7, event), version(T0, 7, event))  # the same event again changes nothing
    assert newer(version(T0 + timedelta(microseconds=1), None, None), version(T0, 9, event))


# -- field groups (order_versions.apply_fields) --------------------------------------------------------------

ALL_FIELDS = [name for names in GROUPS.values() for name in names]


def _placed_row(at: Version) -> dict[str, object]:
    """A row as a first snapshot at ``at`` leaves it: every field 'v0', every group at its version."""
    row: dict[str, object] = dict.fromkeys(ALL_FIELDS, "v0")
    for group in (*GROUPS, None):
        moment, sequence, event_id = version_columns(group)
        row[moment], row[sequence], row[event_id] = at
    return row


# An event: its version and the fields it sets: a snapshot all, a status change its status and maybe counts,
# a refund none. Values name the event, so the row tells which event set each field.
field_sets = st.sampled_from(
    [
        ALL_FIELDS,
        ["status"],
        ["status", "items_shipped"],
        ["status", "items_unshipped"],
        ["status", "items_shipped", "items_unshipped"],
        [],
    ]
)
histories = st.lists(
    st.tuples(st.integers(1, 3).map(lambda h: T0 + timedelta(hours=h)), st.integers(0, 3), field_sets),
    min_size=1,
    max_size=8,
)


def _events(history: list[tuple]) -> list[tuple[Version, dict[str, object]]]:
    out = []
    for n, (at, sequence, names) in enumerate(history):
        v = version(at, sequence, uuid.UUID(int=n + 1))
        out.append((v, {name: f"e{n + 1}:{name}" for name in names}))
    return out


@given(histories, st.randoms())
def test_each_field_group_ends_at_its_newest_setter_in_any_arrival_order(history: list[tuple], rnd: object) -> None:
    """The law: applying an order's events in any order (some twice) gives the row that applying them in
    version order gives, where each field group holds the newest event that sets it."""
    events = _events(history)
    expected = _placed_row(version(T0, 0, uuid.UUID(int=0)))
    for v, fields in sorted(events, key=lambda e: e[0]):
        apply_fields(expected, fields, v, v[1])
    arrivals = events + events[: len(events) // 2]
    rnd.shuffle(arrivals)  # type: ignore[attr-defined]
    row = _placed_row(version(T0, 0, uuid.UUID(int=0)))
    for v, fields in arrivals:
        apply_fields(row, fields, v, v[1])
    assert row == expected
    for group, names in GROUPS.items():
        setters = [(v, fields) for v, fields in events if all(name in fields for name in names)]
        if setters:
            newest, fields = max(setters, key=lambda s: s[0])
            assert of_row(row, group) == newest
            assert all(row[name] == fields[name] for name in names)
    assert of_row(row) == max(v for v, _ in events)


def test_an_older_change_keeps_the_counts_a_newer_change_did_not_carry() -> None:
    """Stop 13's first case: a change without item counts, then an older one with them."""
    row = _placed_row(version(T0, 0, uuid.UUID(int=1)))
    newer_change = version(T0 + timedelta(hours=2), 2, uuid.UUID(int=3))
    older_change = version(T0 + timedelta(hours=1), 1, uuid.UUID(int=2))
    assert apply_fields(row, {"status": "Shipped"}, newer_change, 2)
    assert apply_fields(row, {"status": "PartiallyShipped", "items_shipped": 1, "items_unshipped": 1}, older_change, 1)
    assert (row["status"], row["items_shipped"], row["items_unshipped"]) == ("Shipped", 1, 1)
    assert of_row(row) == newer_change


def test_a_snapshot_after_a_newer_change_sets_its_other_fields() -> None:
    """Stop 13's second case: a snapshot that arrives after a newer change is not skipped whole."""
    row = _placed_row(version(T0, 0, uuid.UUID(int=1)))
    change = version(T0 + timedelta(hours=2), 2, uuid.UUID(int=3))
    snapshot = version(T0 + timedelta(hours=1), 1, uuid.UUID(int=2))
    assert apply_fields(row, {"status": "Shipped", "items_shipped": 2, "items_unshipped": 0}, change, 2)
    assert apply_fields(row, dict.fromkeys(ALL_FIELDS, "snap") | {"amount": "12.50"}, snapshot, 1)
    assert row["amount"] == "12.50" and row["purchase_date"] == "snap"
    assert (row["status"], row["items_shipped"], row["items_unshipped"]) == ("Shipped", 2, 0)
    assert of_row(row) == change and of_row(row, "snapshot") == snapshot
    assert not apply_fields(row, dict.fromkeys(ALL_FIELDS, "again"), snapshot, 1)  # the same snapshot again


def test_a_refund_moves_only_the_row_version() -> None:
    row = _placed_row(version(T0, 0, uuid.UUID(int=1)))
    refund = version(T0 + timedelta(hours=1), None, uuid.UUID(int=2))
    assert apply_fields(row, {}, refund, None)
    assert of_row(row) == refund and row["version_sequence"] is None
    assert all(of_row(row, group) == version(T0, 0, uuid.UUID(int=1)) for group in GROUPS)
    assert not apply_fields(row, {}, version(T0, 0, uuid.UUID(int=1)), 0)  # older: nothing


def test_a_change_sets_its_status_and_the_counts_it_carries() -> None:
    common = {"account_id": uuid.UUID(int=1), "marketplace_id": "M", "amazon_order_id": "1", "region": "EU"}
    change = orders.OrderStatusChanged(
        **common, from_status="Unshipped", to_status="Shipped", last_update_date=T0, number_of_items_shipped=2
    )
    assert change_fields(change) == {"status": "Shipped", "items_shipped": 2}
    both = change.model_copy(update={"number_of_items_unshipped": 0})
    assert change_fields(both) == {"status": "Shipped", "items_shipped": 2, "items_unshipped": 0}
    refund = orders.OrderRefunded(
        **common,
        amount=orders.Money(currency_code="EUR", amount=Decimal("1.00")),
        refunded_at=T0,
        last_update_date=T0,
    )
    assert change_fields(refund) == {}
    counts = orders.OrderItemCountsChanged(
        **common, last_update_date=T0, number_of_items_shipped=3, number_of_items_unshipped=1
    )
    assert change_fields(counts) == {"items_shipped": 3, "items_unshipped": 1}


def test_groups_of_a_row_from_before_step_007_stay_at_its_old_version_when_a_refund_moves_it() -> None:
    row = _placed_row(version(T0, 0, uuid.UUID(int=1)))
    for group in GROUPS:  # no version of their own: at the row's
        for column in version_columns(group):
            row[column] = None
    assert of_row(row, "status") == of_row(row)
    assert apply_fields(row, {}, version(T0 + timedelta(hours=2), 0, uuid.UUID(int=3)), 0)  # a refund
    assert all(of_row(row, group) == version(T0, 0, uuid.UUID(int=1)) for group in GROUPS)
    assert apply_fields(row, {"status": "Shipped"}, version(T0 + timedelta(hours=1), 0, uuid.UUID(int=2)), 0)
    assert row["status"] == "Shipped"
