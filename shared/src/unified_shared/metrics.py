"""Prometheus metrics every service exposes on /metrics (default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

OUTBOX_BACKLOG = Gauge("outbox_backlog_events", "Events committed but not yet published", ["relay"])
OUTBOX_PUBLISHED = Counter("outbox_published_events_total", "Events published by the outbox relay", ["relay"])
CONSUMER_LAG = Gauge("consumer_lag_records", "Records behind the partition end", ["consumer", "topic", "partition"])
CONSUMER_APPLIED = Counter("consumer_events_total", "Events seen by a consumer, by outcome", ["consumer", "outcome"])
CONSUMER_DLQ = Counter("consumer_dead_lettered_total", "Records sent to a dead-letter topic", ["consumer", "topic"])
CONSUMER_RETRIES = Counter("consumer_retries_total", "Retried attempts after transient errors", ["consumer"])
OUTBOX_QUARANTINED = Counter(
    "outbox_quarantined_total", "Event-store rows the relay could not publish, set aside", ["relay"]
)
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_unpublished_age_seconds", "Age of the oldest committed event not yet published", ["relay"]
)
CONSUMER_LAST_FETCH_AGE = Gauge(
    "consumer_last_fetch_age_seconds",
    "Seconds since the consumer last had a fetch answered by the broker (grows while the broker is unreachable)",
    ["consumer"],
)
CONSUMER_DLQ_PENDING = Gauge(
    "consumer_dead_letters_pending", "Dead letters recorded but not yet sent to their DLQ topic", ["consumer"]
)
