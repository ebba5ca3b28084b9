"""Every metric the alert rules and dashboards in deploy/observability name is served on the services'
/metrics, so that an alert can never silently watch a series that does not exist."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import httpx
import pytest
import yaml

OBSERVABILITY = Path(__file__).resolve().parents[1] / "deploy" / "observability"
SERVICES = ["identity", "regions", "orders", "messages", "billing", "seller_view"]
_PROMQL_WORDS = frozenset(
    ("by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset")
)
_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords or label names."""
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r'"[^"]*"', "", expr)
    names = set()
    for match in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", expr):
        word, call = match.group(1), match.group(2)
        if call or word in _PROMQL_WORDS or word.startswith("$"):
            continue
        names.add(word)
    return names


def _expressions() -> dict[str, str]:
    found: dict[str, str] = {}
    for group in yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            found[f"alert {rule['alert']}"] = rule["expr"]
    for board in sorted((OBSERVABILITY / "grafana").glob("*.json")):
        for panel in json.loads(board.read_text())["panels"]:
            for target in panel["targets"]:
                found[f"{board.stem}: {panel['title']}"] = target["expr"]
    return found


async def _served_metrics() -> set[str]:
    served: set[str] = set()
    for service in SERVICES:
        module = importlib.import_module(f"unified_{service}.app")
        settings_module = importlib.import_module(f"unified_{service}.settings")
        settings = settings_module.Settings(**({"region": "NA"} if service in ("orders", "messages") else {}))
        app = module.create_service_app(settings)  # the lifespan is not run: no database needed
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            text = (await client.get("/metrics")).text
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                name = line.split()[2]
                served.update({name, *(name + s for s in _SUFFIXES)})
    return served


def test_metric_name_parser() -> None:
    assert metric_names('sum by (a, b) (rate(x_total{s=~"5.."}[5m])) / max(y) > 0.02') == {"x_total", "y"}
    assert metric_names("histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))") == {"h_bucket"}


async def test_every_metric_in_alerts_and_dashboards_is_served() -> None:
    served = await _served_metrics()
    missing = {
        where: sorted(metric_names(expr) - served)
        for where, expr in _expressions().items()
        if metric_names(expr) - served
    }
    assert not missing, f"named but not served on any /metrics: {missing}"


@pytest.mark.parametrize("name", ["http_request_duration_seconds", "outbox_backlog_events", "consumer_lag_records"])
async def test_core_metrics_are_served(name: str) -> None:
    assert name in await _served_metrics()
