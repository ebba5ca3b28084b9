"""The AsyncAPI documents are the published contract: one message per event type, exactly the headers the
relay sends, examples that are valid records, and the committed files are what the generator makes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from unified_shared import asyncapi, topics
from unified_shared.envelope import Envelope
from unified_shared.events import parse_event, registered_types

DOCS = Path(__file__).resolve().parents[2] / "docs" / "asyncapi"


def _envelope(traceparent: str | None) -> Envelope:
    return Envelope(
        id=uuid.uuid4(),
        source="/services/orders",
        type="unifiedseller.orders.OrderPlaced.v1",
        time=datetime.now(UTC),
        subject="s",
        partitionkey="k",
        sequence=1,
        traceparent=traceparent,
    )


def test_declared_headers_are_exactly_the_headers_sent() -> None:
    traced = {name for name, _ in _envelope("00-" + "a" * 32 + "-" + "b" * 16 + "-01").to_headers()}
    untraced = {name for name, _ in _envelope(None).to_headers()}
    assert set(asyncapi.sent_headers()) == traced
    schema = asyncapi.document("orders")["components"]["schemas"]["CloudEventsHeaders"]
    assert set(schema["required"]) == untraced


def test_one_message_per_event_type_with_key_and_no_phantom_headers() -> None:
    for access in topics.SERVICE_ACCESS:
        if not (access.produces or access.consumes):
            continue
        doc = asyncapi.document(access.service)
        text = json.dumps(doc)
        assert "correlation_id" not in text and "correlationId" not in text
        messages = doc["components"]["messages"]
        for topic in access.produces:
            for model in (m for m in registered_types().values() if topic == m.TOPIC):
                message = messages[model.ce_type()]
                assert message["bindings"]["kafka"]["key"]["type"] == "string"
                assert message["payload"]["$ref"].endswith(f"/{model.__name__}")


@pytest.mark.parametrize("service", [a.service for a in topics.SERVICE_ACCESS if a.produces or a.consumes])
def test_committed_documents_are_generated(service: str) -> None:
    committed = json.loads((DOCS / f"{service}.json").read_text())
    generated = json.loads(json.dumps(asyncapi.document(service, examples=asyncapi.load_examples(DOCS))))
    assert committed == generated, "run `make contracts` and commit docs/asyncapi"


def test_recorded_examples_are_valid_records() -> None:
    examples = asyncapi.load_examples(DOCS)
    assert examples, "run `python -m unified_shared.asyncapi capture` against a platform that ran"
    for access in (a for a in topics.SERVICE_ACCESS if a.produces):
        doc = asyncapi.document(access.service, examples=examples)
        headers_schema = doc["components"]["schemas"]["CloudEventsHeaders"]
        for message in doc["components"]["messages"].values():
            for example in message.get("examples", []):
                fixed = message["headers"]["allOf"][1]
                jsonschema.validate(example["headers"], {"allOf": [headers_schema, fixed]})
                assert example["headers"]["ce_type"] == message["name"]
                parse_event(message["name"], example["payload"])
