"""The order of an order's events (order_versions.py): a total order, so the update an order row ends up
reflecting is the newest of the events it saw, whatever their arrival order or repetitions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from unified_seller_view.order_versions import Version, newer, of_row, version

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
