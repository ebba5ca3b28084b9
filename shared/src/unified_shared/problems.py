"""RFC 9457 problem details (``application/problem+json``) for every HTTP error of every service."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from unified_shared.outages import RETRY_AFTER_S, UNAVAILABLE, OutageEndMiddleware, OutageLog, dependency_of
from unified_shared.requests import current_request_id

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem body."""

    def __init__(
        self, status: int, title: str, detail: str | None = None, *, type_: str = "about:blank", **extra: Any
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.extra = extra
        self.headers: dict[str, str] = {}

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        request_id = current_request_id()
        if request_id is not None:
            body["request_id"] = request_id
        body.update(self.extra)
        return body


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    return JSONResponse(
        problem.body(instance), status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers
    )


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc, request.url.path)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": e.get("msg")}
            for e in exc.errors()
        ]
        fields = ", ".join(e["field"] for e in errors if e["field"]) or "request"
        problem = Problem(422, "Invalid request", f"invalid: {fields}", errors=errors)
        return problem_response(problem, request.url.path)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        problem = Problem(exc.status_code, str(exc.detail) if exc.detail else "HTTP error")
        if exc.headers:
            problem.headers.update(exc.headers)
        return problem_response(problem, request.url.path)

    outages = OutageLog()
    app.state.outages = outages

    async def on_unavailable(request: Request, exc: Exception) -> JSONResponse:
        outages.failed(exc)
        problem = Problem(
            503,
            "Service temporarily unavailable",
            f"the {dependency_of(exc)} cannot be reached right now: retry after {RETRY_AFTER_S} s",
        )
        problem.headers["Retry-After"] = str(RETRY_AFTER_S)
        return problem_response(problem, request.url.path)

    for unavailable in UNAVAILABLE:
        app.add_exception_handler(unavailable, on_unavailable)
    app.add_middleware(OutageEndMiddleware, outages=outages)
    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
