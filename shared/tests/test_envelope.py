from datetime import UTC, datetime
from uuid import uuid4

import pytest

from unified_shared.envelope import Envelope, EnvelopeError


def make() -> Envelope:
    return Envelope(
        id=uuid4(),
        source="/services/orders",
        type="unifiedseller.orders.OrderPlaced.v1",
        time=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        subject="order-1",
        partitionkey="acc",
        sequence=3,
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )


def test_headers_are_binary_mode_cloudevents() -> None:
    env = make()
    headers = dict(env.to_headers())
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"] == str(env.id).encode()
    assert headers["ce_source"] == b"/services/orders"
    assert headers["ce_type"] == b"unifiedseller.orders.OrderPlaced.v1"
    assert headers["ce_time"] == b"2026-03-01T12:00:00Z"
    assert headers["ce_subject"] == b"order-1"
    assert headers["content-type"] == b"application/json"
    assert headers["ce_partitionkey"] == b"acc"
    assert headers["ce_sequence"] == b"3"
    assert headers["ce_traceparent"].startswith(b"00-")


def test_round_trip() -> None:
    env = make()
    assert Envelope.from_headers(env.to_headers()) == env


@pytest.mark.parametrize(
    ("drop", "replace"),
    [("ce_id", None), ("ce_type", None), ("ce_specversion", ("ce_specversion", b"0.3")), (None, ("ce_id", b"x"))],
)
def test_invalid_headers_are_refused(drop: str | None, replace: tuple[str, bytes] | None) -> None:
    headers = [(k, v) for k, v in make().to_headers() if k != drop and (replace is None or k != replace[0])]
    if replace:
        headers.append(replace)
    with pytest.raises(EnvelopeError):
        Envelope.from_headers(headers)
