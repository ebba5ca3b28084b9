"""Per-request context every service shares: a request ID (taken from ``X-Request-ID`` when it is a sane
token, else made here) on the response, in every log line and in every problem body; and Prometheus
histograms of request duration per route template and status, so on-call sees 5xx rates and latency."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from prometheus_client import Histogram

from unified_shared.tracing import SERVICE_ATTRIBUTE, context_of, recording, tracer

log = logging.getLogger("unified_shared.requests")

REQUEST_ID_HEADER = "x-request-id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

HTTP_REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "HTTP requests by method, route template and status",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def current_request_id() -> str | None:
    return request_id_var.get()


class RequestIdLogFilter(logging.Filter):
    """Adds ``request_id`` to every record logged while a request is being served."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id is not None:
            record.request_id = request_id
        return True


async def _send_bug(send: Send, request_id: str) -> None:
    body = json.dumps(
        {"type": "about:blank", "title": "Internal error", "status": 500, "request_id": request_id}
    ).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (REQUEST_ID_HEADER.encode(), request_id.encode()),
    ]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    # Unmatched paths share one label: a scanner must not create a time series per URL.
    return path if isinstance(path, str) else "unmatched"


_TRACE_HEADERS = frozenset((b"traceparent", b"tracestate"))


class RequestContextMiddleware:
    """Plain ASGI (no per-request task): sets the request ID and times the request. A server span is made
    only while spans are recorded; otherwise an incoming trace context is just made current, so the events
    the request causes still carry it (what a non-recording span would have carried, for less work)."""

    def __init__(self, app: ASGIApp, service: str = "") -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = ""
        trace_headers: dict[str, str] = {}
        for name, value in scope.get("headers") or ():
            if name == b"x-request-id":
                given = value.decode("latin-1")
            elif name in _TRACE_HEADERS:
                trace_headers[name.decode("latin-1")] = value.decode("latin-1")
        request_id = given if _SANE_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status = 0
        started = time.perf_counter()
        method = str(scope.get("method", ""))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER.encode(), request_id.encode())]
            await send(message)

        span: Span | None = None
        span_cm: Any = None
        attached: object | None = None
        if recording():
            span_cm = tracer().start_as_current_span(
                f"{method} request", context=context_of(trace_headers), kind=SpanKind.SERVER
            )
            span = span_cm.__enter__()
            span.set_attribute(SERVICE_ATTRIBUTE, self.service)
            span.set_attribute("http.request.method", method)
            span.set_attribute("request_id", request_id)
        elif trace_headers:
            attached = otel_context.attach(context_of(trace_headers))
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Our bug: one stack trace in the log, and the client still gets a problem body it can quote.
            log.exception("unhandled error in %s %s", method, _route_of(scope))
            if status:
                raise  # the answer had started: nothing more can be sent
            await _send_bug(send, request_id)
        finally:
            route = _route_of(scope)
            HTTP_REQUEST_SECONDS.labels(method, route, str(status or 500)).observe(time.perf_counter() - started)
            if span is not None:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status or 500)
                if (status or 500) >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                span_cm.__exit__(None, None, None)
            elif attached is not None:
                otel_context.detach(attached)  # type: ignore[arg-type]
            request_id_var.reset(token)
