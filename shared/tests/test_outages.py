"""A dependency outage answers 503 problem+json with Retry-After and is logged once at its start and once at
its end, never per request; a real bug still answers 500."""

from __future__ import annotations

import logging

import asyncpg
import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from fastapi import FastAPI

from unified_shared.problems import install_problem_handlers
from unified_shared.requests import RequestContextMiddleware


def _app() -> tuple[FastAPI, dict[str, BaseException | None]]:
    app = FastAPI()
    install_problem_handlers(app)
    state: dict[str, BaseException | None] = {"raise": None}

    @app.get("/thing")
    async def thing() -> dict[str, str]:
        exc = state["raise"]
        if exc is not None:
            raise exc
        return {"ok": "yes"}

    return app, state


async def _get(app: FastAPI, path: str = "/thing") -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path)


@pytest.mark.parametrize(
    ("exc", "dependency"),
    [
        (asyncpg.exceptions.CannotConnectNowError("the database system is starting up"), "database"),
        (ConnectionRefusedError(111, "Connection refused"), "database"),
        (TimeoutError(), "database"),
        (KafkaConnectionError("Unable to bootstrap"), "broker"),
        (asyncpg.exceptions.InterfaceError("the underlying connection is closed"), "database"),
    ],
)
async def test_outage_is_a_503_problem_with_retry_after(exc: BaseException, dependency: str) -> None:
    app, state = _app()
    state["raise"] = exc
    response = await _get(app)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert dependency in response.json()["detail"]


async def test_outage_logged_once_at_start_and_once_at_end_with_count(caplog: pytest.LogCaptureFixture) -> None:
    app, state = _app()
    caplog.set_level(logging.INFO, logger="unified_shared.outages")
    state["raise"] = ConnectionRefusedError(111, "Connection refused")
    for _ in range(25):
        assert (await _get(app)).status_code == 503
    state["raise"] = None
    assert (await _get(app)).status_code == 200
    assert (await _get(app)).status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "unified_shared.outages"]
    assert len(lines) == 2, lines
    assert "database unavailable" in lines[0]
    assert "available again" in lines[1] and "25 request(s)" in lines[1]


@pytest.mark.parametrize(
    "bug",
    [
        ValueError("our bug"),
        asyncpg.exceptions.InterfaceError("cannot perform operation: another operation is in progress"),
    ],
)
async def test_a_bug_is_not_dressed_up_as_an_outage(bug: Exception) -> None:
    app, state = _app()
    app.add_middleware(RequestContextMiddleware)
    state["raise"] = bug
    response = await _get(app)
    assert response.status_code == 500
    assert "retry-after" not in response.headers
