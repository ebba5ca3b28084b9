"""RFC 9457 problem details (``application/problem+json``) for every HTTP error of every service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from unified_shared.outages import (
    RETRY_AFTER_S,
    UNAVAILABLE,
    OutageEndMiddleware,
    OutageLog,
    dependency_of,
    lost_connection,
)
from unified_shared.requests import current_request_id

PROBLEM_JSON = "application/problem+json"


class ProblemBody(BaseModel):
    """The documented shape of every error answer (RFC 9457, plus ``field`` naming what was refused)."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    field: str | None = None


_ERRORS = {
    "400": "Bad request",
    "401": "Missing or invalid token",
    "403": "Outside the caller's permissions or scope",
    "404": "Not found",
    "409": "Conflicts with the stored state",
    "422": "Invalid request: the field at fault is named",
    "429": "Too many requests",
    "503": "Temporarily unavailable",
}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Every operation documents its error answers as ``application/problem+json`` ``ProblemBody``.

    FastAPI would document 422 as its own ``HTTPValidationError`` in ``application/json``; our handlers
    answer problem+json, so the document says that (clients and fuzzers check answers against it).
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ProblemBody"] = ProblemBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemBody"}}}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            for code, description in _ERRORS.items():
                responses[code] = {"description": responses.get(code, {}).get("description", description)}
                responses[code]["content"] = problem
    return schema


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


# Paths shaped like Amazon's SP-API: their error bodies also carry SP-API's ``errors`` list, the only thing
# SP-API clients read (python-amazon-sp-api raises on it, and without it shows an error as an empty page).
SP_API_PREFIXES = ("/orders/v0/", "/messaging/v1/", "/sellers/v1/")
_SP_API_CODES = {
    400: "InvalidInput",
    401: "Unauthorized",
    403: "Unauthorized",
    404: "NotFound",
    409: "Conflict",
    422: "InvalidInput",
    429: "QuotaExceeded",
    503: "ServiceUnavailable",
}


def with_sp_api_errors(body: dict[str, Any]) -> dict[str, Any]:
    """The problem body plus ``errors: [{code, message, details}]`` (SP-API's ErrorList), unless it has one."""
    if "errors" in body:
        return body
    status = int(body.get("status", 500))
    error = {
        "code": _SP_API_CODES.get(status, "InternalFailure"),
        "message": str(body.get("detail") or body.get("title") or ""),
        "details": str(body.get("field") or ""),
    }
    return {**body, "errors": [error]}


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    body = problem.body(instance)
    if instance is not None and instance.startswith(SP_API_PREFIXES):
        body = with_sp_api_errors(body)
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers)


_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


def error_field(loc: Sequence[Any]) -> str:
    """``("body", "Orders", 0, "OrderTotal", "Amount")`` -> ``"Orders.0.OrderTotal.Amount"``."""
    parts = list(loc)
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    # Wrapped validators add their own tags (``function-after[...]``); they are no field.
    return ".".join(str(p) for p in parts if not (isinstance(p, str) and "[" in p))


def _message(error: Any) -> str | None:
    msg = error.get("msg")
    return msg.removeprefix("Value error, ") if isinstance(msg, str) else None


def validation_problem(errors: Sequence[Any], title: str = "Invalid request", **extra: Any) -> Problem:
    """422 naming every field at fault (``field`` is the first); never echoes the refused value."""
    listed = [{"field": error_field(e.get("loc", ())), "message": _message(e)} for e in errors]
    fields = ", ".join(dict.fromkeys(e["field"] for e in listed if e["field"])) or "request"
    first = listed[0] if listed else {"field": "", "message": None}
    body: dict[str, Any] = {"field": first["field"] or "request", "errors": listed, **extra}
    ctx = errors[0].get("ctx") if errors else None
    if isinstance(ctx, dict) and isinstance(ctx.get("max_length"), int):
        body["limit"] = ctx["max_length"]
    detail = f"invalid: {fields}" + (f" ({first['message']})" if first["message"] else "")
    return Problem(422, title, detail, **body)


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc, request.url.path)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError | ValidationError)
        return problem_response(validation_problem(exc.errors()), request.url.path)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        problem = Problem(exc.status_code, str(exc.detail) if exc.detail else "HTTP error")
        if exc.headers:
            problem.headers.update(exc.headers)
        return problem_response(problem, request.url.path)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

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

    async def on_interface_error(request: Request, exc: Exception) -> JSONResponse:
        if lost_connection(exc):
            return await on_unavailable(request, exc)
        raise exc  # a programming error: the request context answers 500 and logs it once

    for unavailable in UNAVAILABLE:
        app.add_exception_handler(unavailable, on_unavailable)
    app.add_exception_handler(asyncpg.exceptions.InterfaceError, on_interface_error)
    app.add_middleware(OutageEndMiddleware, outages=outages)
    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
