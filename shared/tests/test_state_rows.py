"""A state dataclass read from and written to its table's row (unified_shared.state_rows)."""

from __future__ import annotations

from dataclasses import dataclass

from unified_shared import state_rows


@dataclass(frozen=True, slots=True)
class _State:
    key: str
    status: str
    version: int


def test_a_row_reads_back_as_its_state_with_the_version_from_stream_version() -> None:
    row = {"account_id": "a", "key": "k", "status": "Shipped", "stream_version": 3, "version": 99}
    assert state_rows.from_row(_State, row) == _State("k", "Shipped", 3)


def test_a_state_writes_its_values_in_field_order() -> None:
    assert state_rows.values(_State("k", "Shipped", 3)) == ["k", "Shipped", 3]
    assert [state_rows.column(f) for f in ("key", "version")] == ["key", "stream_version"]
