"""A service's current-state table whose columns, after ``account_id``, bear the names of its state dataclass's
fields in field order, but for the stream's version (field ``version``, column ``stream_version``): orders keep
their orders so, messages their threads and timeline entries. Written once here so both read and write a row
the same way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def column(field: str) -> str:
    """The column that holds a state field."""
    return "stream_version" if field == "version" else field


def from_row(cls: type[T], row: Mapping[str, Any]) -> T:
    """The state a row holds (extra columns, such as ``account_id``, are left out)."""
    return cls(**{f.name: row[column(f.name)] for f in fields(cls)})


def values(state: DataclassInstance) -> list[Any]:
    """The state's values in column order (after ``account_id``): the parameters of its INSERT."""
    return [getattr(state, f.name) for f in fields(state)]
