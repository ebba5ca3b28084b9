"""Every answer carries a request ID (also in problem bodies and log lines), and request durations are
recorded per route template and status."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from unified_shared.problems import Problem, install_problem_handlers
from unified_shared.requests import RequestContextMiddleware, RequestIdLogFilter


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware)

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        logging.getLogger("test.things").warning("looking at %s", thing_id)
        if thing_id == "missing":
            raise Problem(404, "Not found")
        if thing_id == "bug":
            raise RuntimeError("our bug")
        return {"thing": thing_id}

    return app


async def _get(app: FastAPI, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path, headers=headers)


def _count(route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "http_request_duration_seconds_count", {"method": "GET", "route": route, "status": status}
    )
    return value or 0.0


async def test_request_id_is_echoed_or_made_and_lands_in_problems_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    app = _app()
    caplog.handler.addFilter(RequestIdLogFilter())
    ok = await _get(app, "/things/a", {"X-Request-ID": "client-chosen-1"})
    assert ok.headers["x-request-id"] == "client-chosen-1"
    made = await _get(app, "/things/missing", {"X-Request-ID": "bad id with spaces"})
    assert made.status_code == 404
    rid = made.headers["x-request-id"]
    assert rid != "bad id with spaces" and len(rid) == 32
    assert made.json()["request_id"] == rid
    ids = [getattr(r, "request_id", None) for r in caplog.records if r.name == "test.things"]
    assert ids == ["client-chosen-1", rid]


async def test_an_unhandled_error_is_a_500_problem_with_the_request_id() -> None:
    response = await _get(_app(), "/things/bug")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_durations_are_recorded_per_route_template_and_status() -> None:
    app = _app()
    before_ok, before_404 = _count("/things/{thing_id}", "200"), _count("/things/{thing_id}", "404")
    before_500, before_unmatched = _count("/things/{thing_id}", "500"), _count("unmatched", "404")
    await _get(app, "/things/x")
    await _get(app, "/things/y")
    await _get(app, "/things/missing")
    await _get(app, "/things/bug")
    await _get(app, "/nowhere/at/all")
    assert _count("/things/{thing_id}", "200") == before_ok + 2
    assert _count("/things/{thing_id}", "404") == before_404 + 1
    assert _count("/things/{thing_id}", "500") == before_500 + 1
    assert _count("unmatched", "404") == before_unmatched + 1


@pytest.mark.parametrize("recorded", [False, True])
async def test_an_incoming_traceparent_is_current_while_the_request_is_served(
    recorded: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With spans off, the caller's trace context alone is made current (no span is made): what the request
    appends must still carry the caller's trace. With spans on, the request's span is its child."""
    import unified_shared.requests as requests_module
    from unified_shared.tracing import current_traceparent

    monkeypatch.setattr(requests_module, "recording", lambda: recorded)
    app = FastAPI()
    app.add_middleware(RequestContextMiddleware)

    @app.get("/trace")
    async def trace_of() -> dict[str, str | None]:
        return {"traceparent": current_traceparent()}

    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    given = f"00-{trace_id}-00f067aa0ba902b7-01"
    seen = (await _get(app, "/trace", {"traceparent": given})).json()["traceparent"]
    assert seen is not None and seen.split("-")[1] == trace_id
    if not recorded:
        assert seen == given  # passed through unchanged
    assert (await _get(app, "/trace")).json()["traceparent"] is None or recorded
