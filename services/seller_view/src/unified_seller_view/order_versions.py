"""The one order of an order's events: by (last_update_date, envelope sequence, event ID). Both order paths
(order_batches.py set-based, order_handlers.py event by event) decide with ``newer`` whether an event replaces
what the order row reflects, so the row is the same whatever the batch boundaries, redelivery or a rebuild.
A missing sequence (old records) or a row written before versions were kept ranks lowest among its ties.

Events set only some of an order's fields: a snapshot (OrderPlaced) all of them, a status change its status
and the item counts it carries (older records carry none), a refund none. So each group of fields keeps the
version of the event that set it last (``GROUPS``), and an event sets a group only when newer than that
group: each group ends at its newest setter, as applying the events in version order would leave it,
whatever order they arrive in (a snapshot that comes after a newer change still sets its other fields; an
older change's counts still count after a newer change without any). The row's own version (last_update_date,
version_sequence, version_event_id) is the newest of every event applied, refunds included."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from datetime import datetime
from typing import Any
from uuid import UUID

from unified_shared.contracts import orders

Version = tuple[datetime, int, UUID]

_NO_SEQUENCE = -1
_NO_EVENT = UUID(int=0)

# The order row's fields by the group that versions them; each group's version is in columns
# ``<group>_at``, ``<group>_sequence``, ``<group>_event_id`` (readmodel step 007).
GROUPS: dict[str, tuple[str, ...]] = {
    "snapshot": (
        "marketplace_id",
        "region",
        "purchase_date",
        "fulfillment_channel",
        "currency",
        "amount",
        "number_of_items",
    ),
    "status": ("status",),
    "shipped": ("items_shipped",),
    "unshipped": ("items_unshipped",),
}
_ROW_VERSION = ("last_update_date", "version_sequence", "version_event_id")


def version(at: datetime, sequence: int | None, event_id: UUID | None) -> Version:
    return (at, _NO_SEQUENCE if sequence is None else sequence, _NO_EVENT if event_id is None else event_id)


def version_columns(group: str | None) -> tuple[str, str, str]:
    """The columns holding a group's version (None: the row's own version)."""
    if group is None:
        return _ROW_VERSION
    return (f"{group}_at", f"{group}_sequence", f"{group}_event_id")


def of_row(row: Any, group: str | None = None) -> Version:
    """The version an order row reflects (its last_update_date, version_sequence, version_event_id), or the
    version of one of its field groups (none recorded: a row from before step 007, at the row's version)."""
    at, sequence, event_id = version_columns(group)
    if row[at] is None:
        return of_row(row)
    return version(row[at], row[sequence], row[event_id])


def newer(candidate: Version, current: Version) -> bool:
    """Whether an event of version ``candidate`` replaces an order at ``current`` (equal: the same event)."""
    return candidate > current


def apply_fields(row: MutableMapping[str, Any], fields: Mapping[str, Any], at: Version, sequence: int | None) -> bool:
    """Apply an event of version ``at`` (``sequence`` as received) that sets ``fields`` to an order row: each
    group whose fields it sets, where newer than the group, and the row's version, where newer. Returns
    whether the row changed. ``fields`` of a snapshot name every group's fields; of a status change its status
    and the counts it carries; of a refund none."""
    changed = False
    for group, names in GROUPS.items():
        if not all(name in fields for name in names) or not newer(at, of_row(row, group)):
            continue
        row.update({name: fields[name] for name in names})
        _set_version(row, group, at, sequence)
        changed = True
    if newer(at, of_row(row)):
        _set_version(row, None, at, sequence)
        changed = True
    return changed


# The events that change a known order (parked until it is known), by their type's name.
Change = orders.OrderStatusChanged | orders.OrderItemCountsChanged | orders.OrderRefunded
CHANGE_MODELS: dict[str, type[Change]] = {
    m.NAME: m for m in (orders.OrderStatusChanged, orders.OrderItemCountsChanged, orders.OrderRefunded)
}


def change_fields(event: Change) -> dict[str, Any]:
    """The order fields a change sets (apply_fields): a status change its status and the item counts it
    carries, a change of counts both counts, a refund none (it only moves the order's version)."""
    if isinstance(event, orders.OrderRefunded):
        return {}
    fields: dict[str, Any] = {}
    if isinstance(event, orders.OrderStatusChanged):
        fields["status"] = event.to_status
    if event.number_of_items_shipped is not None:
        fields["items_shipped"] = event.number_of_items_shipped
    if event.number_of_items_unshipped is not None:
        fields["items_unshipped"] = event.number_of_items_unshipped
    return fields


def _set_version(row: MutableMapping[str, Any], group: str | None, at: Version, sequence: int | None) -> None:
    if group is None:  # groups without their own version were at the row's version: they stay there
        for other in GROUPS:
            moment, sequence_column, event_column = version_columns(other)
            if row[moment] is None:
                row[moment], row[sequence_column], row[event_column] = (row[c] for c in _ROW_VERSION)
    moment, sequence_column, event_column = version_columns(group)
    row[moment], row[sequence_column], row[event_column] = at[0], sequence, at[2]
