"""The input bounds of DESIGN section 11 and their mapping to 422 problem bodies naming the field."""

from __future__ import annotations

import base64
import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI, Query
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from unified_shared.bounds import (
    AmountStr,
    Count,
    Cursor,
    Instant,
    LineStr,
    Period,
    QueryInstant,
    TextStr,
    check_minor_units,
    cursor_json,
)
from unified_shared.problems import install_problem_handlers


class Sample(BaseModel):
    at: Instant | None = None
    name: LineStr = Field("x", max_length=20)
    body: TextStr = Field("x", max_length=100)
    amount: AmountStr = "1.00"
    count: Count = 0
    period: Period = "2026-09"


def refused(**fields: object) -> str:
    with pytest.raises(ValidationError) as info:
        Sample.model_validate(fields)
    return str(info.value.errors()[0]["loc"][0])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("at", "0001-01-01T00:00:00+00:00"),
        ("at", "9999-12-31T23:59:59-01:00"),
        ("at", "1999-12-31T23:59:59Z"),
        ("at", "2026-09-01T10:00:00"),
        ("at", "+10000-01-01T00:00:00Z"),
        ("name", "a\r\nBcc: x@example.com"),
        ("name", "nul\x00"),
        ("body", "lone \ud800 surrogate"),
        ("body", "bell \x07"),
        ("body", "y" * 101),
        ("amount", "1" * 40),
        ("amount", "-1.00"),
        ("amount", "1.1234567"),
        ("count", 2**31),
        ("count", -1),
        ("count", True),
        ("period", "0000-01"),
        ("period", "9999-12"),
        ("period", "2026-13"),
    ],
)
def test_out_of_bounds_values_are_refused_naming_the_field(field: str, value: object) -> None:
    assert refused(**{field: value}) == field


def test_values_within_bounds_pass() -> None:
    now = datetime.now(UTC)
    ok = Sample.model_validate(
        {
            "at": (now + timedelta(hours=23)).isoformat(),
            "name": "Müller GmbH & Co. KG",
            "body": "line one\r\nline two\ttabbed",
            "amount": "999999999999.99",
            "count": 2**31 - 1,
            "period": "2100-12",
        }
    )
    assert ok.at is not None and ok.at.tzinfo is not None
    assert refused(at=(now + timedelta(days=2)).isoformat()) == "at"


def test_minor_units_of_the_currency() -> None:
    assert str(check_minor_units("12.5", "EUR")) == "12.5"
    with pytest.raises(ValueError):
        check_minor_units("12.5", "JPY")
    with pytest.raises(ValueError):
        check_minor_units("1.001", "EUR")
    with pytest.raises(ValueError):
        check_minor_units("1", "XXQ")


def test_cursor_refuses_non_finite_numbers_and_garbage() -> None:
    infinity = base64.urlsafe_b64encode(b'{"n": Infinity}').decode().rstrip("=")
    for token in (infinity, "not base64!", base64.urlsafe_b64encode(b"\xff\xfe").decode()):
        with pytest.raises(ValueError):
            cursor_json(token)
    assert cursor_json(base64.urlsafe_b64encode(b'{"n": 5}').decode()) == {"n": 5}


@given(st.text())
def test_text_checks_never_raise_anything_but_validation_errors(text: str) -> None:
    with contextlib.suppress(ValidationError):
        Sample.model_validate({"name": text[:20], "body": text[:100]})


def test_violations_answer_422_problem_json_naming_the_field() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/things")
    async def post_thing(thing: Sample) -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/things")
    async def get_things(
        created_after: QueryInstant | None = Query(None, alias="CreatedAfter"),
        next_token: Cursor | None = Query(None),
    ) -> dict[str, str]:
        return {"ok": "yes"}

    client = TestClient(app)
    body = client.post("/things", json={"name": "a\nb"})
    assert body.status_code == 422 and body.headers["content-type"] == "application/problem+json"
    assert body.json()["field"] == "name"
    too_long = client.post("/things", json={"body": "z" * 101})
    assert (too_long.json()["field"], too_long.json()["limit"]) == ("body", 100)
    query = client.get("/things", params={"CreatedAfter": "0001-01-01T00:00:00Z"})
    assert (query.status_code, query.json()["field"]) == (422, "CreatedAfter")
    cursor = client.get("/things", params={"next_token": "a b"})
    assert (cursor.status_code, cursor.json()["field"]) == (422, "next_token")
    assert client.get("/things", params={"CreatedAfter": "2026-01-01T00:00:00Z"}).status_code == 200
