"""Each service's AsyncAPI 3 document (``docs/asyncapi/``): channels per topic, one message per event type,
the CloudEvents headers the relay really sends, the Kafka key, and examples taken from real records.

FastStream generates the base document and the payload schemas from the contract models; this module then
splits each channel's union message into one message per event type and declares the headers and key.
Run: ``python -m unified_shared.asyncapi --dir docs/asyncapi`` (``capture`` refreshes the examples from a
running platform's topics).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
from pathlib import Path
from typing import Any, Union

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from unified_shared import topics
from unified_shared.events import AccountEvent, Event, registered_types

EXAMPLES_FILE = "examples.json"
DEFAULT_VERSION = "1.0.0"

# CloudEvents 1.0 Kafka binary mode as sent by the outbox relay (unified_shared.envelope.Envelope.to_headers).
_CE_HEADERS: dict[str, dict[str, Any]] = {
    "ce_specversion": {"type": "string", "const": "1.0", "description": "CloudEvents spec version."},
    "ce_id": {"type": "string", "format": "uuid", "description": "Unique per event: deduplicate on it."},
    "ce_source": {"type": "string", "description": "The producing service, `/services/<name>`."},
    "ce_type": {"type": "string", "description": "`unifiedseller.<domain>.<Name>.v<version>`."},
    "ce_time": {"type": "string", "format": "date-time", "description": "When the event happened (UTC)."},
    "ce_subject": {"type": "string", "description": "The aggregate (event stream) the event belongs to."},
    "content-type": {"type": "string", "const": "application/json", "description": "The value is JSON."},
    "ce_partitionkey": {"type": "string", "description": "Equal to the Kafka key."},
    "ce_sequence": {
        "type": "string",
        "pattern": "^[0-9]+$",
        "description": "The event's version in its stream (1, 2, ...): gaps never occur within a subject.",
    },
    "ce_traceparent": {
        "type": "string",
        "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
        "description": "W3C trace context of the request that caused the event; absent when none was traced.",
    },
}
_CE_REQUIRED = [h for h in _CE_HEADERS if h != "ce_traceparent"]


def sent_headers() -> list[str]:
    """Every header name the documents declare (a test holds this against what the relay sends)."""
    return list(_CE_HEADERS)


def _models_on(topic: str) -> list[type[Event]]:
    return [m for _, m in sorted(registered_types().items()) if topic == m.TOPIC]


def _union(models: list[type[Event]]) -> Any:
    return Union[tuple(models)] if len(models) > 1 else models[0]  # noqa: UP007


def service_version(service: str) -> str:
    """The service package's own version (unified-<service>), which its AsyncAPI document carries."""
    try:
        return importlib.metadata.version(f"unified-{service.replace('_', '-')}")
    except importlib.metadata.PackageNotFoundError:
        return DEFAULT_VERSION


def _channels(service: str) -> tuple[list[str], list[str]]:
    access = topics.access_of(service)
    # A topic without contract models yet (a service still being built) has nothing to document.
    return [t for t in access.produces if _models_on(t)], [t for t in access.consumes if _models_on(t)]


def _key_schema(model: type[Event]) -> dict[str, Any]:
    if issubclass(model, AccountEvent):
        return {"type": "string", "format": "uuid", "description": "account_id: one account's events stay in order"}
    return {"type": "string", "description": "The event's own partition key (FX rates: the rate date)."}


def _message(model: type[Event], source: str | None, examples: dict[str, Any]) -> dict[str, Any]:
    ce_type = model.ce_type()
    fixed: dict[str, Any] = {"ce_type": {"const": ce_type}}
    if source is not None:
        fixed["ce_source"] = {"pattern": f"^{source}(-[a-z]+)?$"}  # regional instances: /services/orders-eu
    message: dict[str, Any] = {
        "name": ce_type,
        "title": model.__name__,
        "summary": (model.__doc__ or "").strip().split("\n")[0],
        "contentType": "application/json",
        "headers": {"allOf": [{"$ref": "#/components/schemas/CloudEventsHeaders"}, {"properties": fixed}]},
        "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
        "bindings": {"kafka": {"key": _key_schema(model), "bindingVersion": "0.4.0"}},
    }
    example = examples.get(ce_type)
    if example is not None:
        message["examples"] = [{"name": "recorded", "summary": "taken from a real record", **example}]
    return message


def document(service: str, *, version: str | None = None, examples: dict[str, Any] | None = None) -> dict[str, Any]:
    """``version`` defaults to the service package's own (see CHANGELOG.md of the service)."""
    version = version or service_version(service)
    examples = examples or {}
    publishes, consumes = _channels(service)
    broker = KafkaBroker("127.0.0.1:9092")
    for topic in publishes:
        broker.publisher(topic, schema=_union(_models_on(topic)), title=f"{topic}:publish")
    for topic in consumes:
        payload = _union(_models_on(topic))

        async def handler(event: Any) -> None:  # documentation only: never called
            return None

        handler.__annotations__ = {"event": payload, "return": None}
        broker.subscriber(topic, group_id=service, title=f"{topic}:consume")(handler)
    spec = AsyncAPI(
        broker,
        title=f"unified-seller {service}",
        version=version,
        schema_version="3.0.0",
        description=(
            "CloudEvents 1.0, Kafka binary mode: ce_* headers, JSON value, Kafka key = account_id (FX rates: the "
            "date). At-least-once: deduplicate on ce_id. Consumers' guide: docs/consumers.md."
        ),
    )
    doc: dict[str, Any] = json.loads(spec.to_specification().to_json())
    return _one_message_per_type(doc, service, publishes, consumes, examples)


def _one_message_per_type(
    doc: dict[str, Any], service: str, publishes: list[str], consumes: list[str], examples: dict[str, Any]
) -> dict[str, Any]:
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["CloudEventsHeaders"] = {
        "type": "object",
        "properties": _CE_HEADERS,
        "required": _CE_REQUIRED,
    }
    messages: dict[str, Any] = {}
    for topic, direction in [(t, "publish") for t in publishes] + [(t, "consume") for t in consumes]:
        channel_id = f"{topic}:{direction}"
        models = _models_on(topic)
        source = f"/services/{service}" if direction == "publish" else None
        channel_messages = {}
        for model in models:
            message_id = f"{model.ce_type()}" + ("" if direction == "publish" else ":consumed")
            messages[message_id] = _message(model, source, examples)
            channel_messages[model.__name__] = {"$ref": f"#/components/messages/{message_id}"}
        schemas.pop(f"{channel_id}:Message:Payload", None)
        schemas.pop(f"{channel_id}:Message", None)
        channel = doc["channels"][channel_id]
        channel["messages"] = channel_messages
        channel["description"] = f"Topic {topic}: " + ", ".join(m.ce_type() for m in models)
        for operation in doc.get("operations", {}).values():
            if operation.get("channel", {}).get("$ref") == f"#/channels/{channel_id}":
                operation["messages"] = [
                    {"$ref": f"#/channels/{channel_id}/messages/{name}"} for name in channel_messages
                ]
    components["messages"] = messages
    return doc


def load_examples(directory: Path) -> dict[str, Any]:
    path = directory / EXAMPLES_FILE
    return json.loads(path.read_text()) if path.exists() else {}


async def capture(bootstrap: str, directory: Path, timeout_s: float = 10.0) -> int:
    """Keep the first real record of every event type found on the topics as its example."""
    from unified_shared.kafka import make_consumer

    wanted = {m.ce_type(): m for m in registered_types().values()}
    found = load_examples(directory)
    consumer = make_consumer(
        bootstrap,
        group_id="asyncapi-capture",
        client_id="asyncapi-capture",
        topics=sorted({m.TOPIC for m in wanted.values()}),
    )
    await consumer.start()
    try:
        batches = 0
        while len(found) < len(wanted) and batches < timeout_s * 2:
            batches += 1
            for records in (await consumer.getmany(timeout_ms=500, max_records=2000)).values():
                for record in records:
                    headers = {k: v.decode() for k, v in record.headers}
                    ce_type = headers.get("ce_type")
                    if ce_type in wanted and ce_type not in found and record.value is not None:
                        found[ce_type] = {"headers": headers, "payload": json.loads(record.value)}
    finally:
        await consumer.stop()
    (directory / EXAMPLES_FILE).write_text(json.dumps(found, indent=2, sort_keys=True) + "\n")
    return len(found)


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate every service's AsyncAPI document")
    parser.add_argument("command", nargs="?", choices=["generate", "capture"], default="generate")
    parser.add_argument("--dir", default="docs/asyncapi", type=Path)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="capture: the platform's broker")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.command == "capture":
        import asyncio

        from unified_shared.local_secrets import use_local_admin_login

        use_local_admin_login()  # the local broker wants SASL/SCRAM over TLS
        count = asyncio.run(capture(args.bootstrap, args.dir))
        print(f"{count} event types have a recorded example in {args.dir / EXAMPLES_FILE}")
    examples = load_examples(args.dir)
    services = [a.service for a in topics.SERVICE_ACCESS if a.produces or a.consumes]
    for service in services:
        path = args.dir / f"{service}.json"
        path.write_text(json.dumps(document(service, examples=examples), indent=2, sort_keys=True) + "\n")
    print(f"{len(services)} AsyncAPI documents written to {args.dir}")


if __name__ == "__main__":
    main()
