"""Opaque page cursors (NextToken / next_token): a JSON object, base64url-encoded without padding.

Clients never read them; a cursor that does not decode into what the service wrote is refused with 422
naming its field, never a 500 (``bounds.cursor_json`` refuses NaN/Infinity and oversized values).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from unified_shared.bounds import check_line, check_query_instant, cursor_json
from unified_shared.errors import Invalid

T = TypeVar("T")


def encode_cursor(data: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(token: str, field: str, parse: Callable[[dict[str, Any]], T]) -> T:
    """``parse`` the decoded object; any fault in it (missing key, wrong type, bad value) is a 422 on ``field``."""
    try:
        return parse(cursor_json(token))
    except (ValueError, KeyError, TypeError, IndexError, OverflowError):
        raise Invalid(field, f"{field} is not valid") from None


def key_json(key: tuple[datetime, str]) -> list[str]:
    """A keyset position (sort instant, tie-breaking ID) as cursor JSON."""
    return [key[0].isoformat(), key[1]]


def parse_key(raw: Any) -> tuple[datetime, str]:
    """The keyset position written by ``key_json``, checked as a query bound."""
    return check_query_instant(datetime.fromisoformat(raw[0])), check_line(str(raw[1]))
