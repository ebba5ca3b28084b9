"""OpenTelemetry traces across the platform: the HTTP request, the event-store append (its ``traceparent``
column), the relay, the Kafka record (``ce_traceparent``) and each consumer share one trace.

Export is by OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, off otherwise. Off, spans are not recorded but
an incoming W3C ``traceparent`` still passes through to the events a request causes, so a caller's trace is
never cut.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind

TRACER_NAME = "unified_seller"
SERVICE_ATTRIBUTE = "unified.service"  # which service made a span (several may share a process in tests)


def configure_tracing(service: str) -> bool:
    """Install an OTLP-exporting tracer provider when an endpoint is configured; True when it did."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span (or of the remote parent passed through), if any."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def context_of(headers: Mapping[str, str]) -> otel_context.Context:
    return propagate.extract(dict(headers))


def recording() -> bool:
    """True when an SDK tracer provider is installed (export configured, or a test's in-memory one)."""
    return hasattr(trace.get_tracer_provider(), "add_span_processor")


def record_spans(
    name_and_parents: Iterable[tuple[str, str | None]], *, service: str, kind: SpanKind, start_ns: int, end_ns: int
) -> None:
    """One span per traced item (e.g. the events of a consumer batch), each a child of its own traceparent,
    all covering the batch's time: a batch applies set-based, so this is when each event was applied."""
    if not recording():
        return
    for name, traceparent in name_and_parents:
        if not traceparent:
            continue
        current = tracer().start_span(
            name, context=context_of({"traceparent": traceparent}), kind=kind, start_time=start_ns
        )
        current.set_attribute(SERVICE_ATTRIBUTE, service)
        current.end(end_time=end_ns)


def handed_on(traceparent: str | None, name: str, *, service: str, kind: SpanKind = SpanKind.PRODUCER) -> str | None:
    """A span for one hop (the relay publishing a stored event), a child of ``traceparent``; returns the
    traceparent the next hop continues from (the input itself when spans are not recorded)."""
    if not traceparent or not recording():
        return traceparent
    hop = tracer().start_span(name, context=context_of({"traceparent": traceparent}), kind=kind)
    hop.set_attribute(SERVICE_ATTRIBUTE, service)
    hop.end()
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(hop))
    return carrier.get("traceparent", traceparent)


@contextlib.contextmanager
def span(
    name: str, *, service: str, traceparent: str | None = None, kind: SpanKind = SpanKind.INTERNAL
) -> Iterator[Span]:
    """A span of ``service``; a child of ``traceparent`` when given, else of the current span."""
    parent = context_of({"traceparent": traceparent}) if traceparent else None
    with tracer().start_as_current_span(name, context=parent, kind=kind) as current:
        current.set_attribute(SERVICE_ATTRIBUTE, service)
        yield current
