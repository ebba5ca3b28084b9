"""The scheduled ECB import against a local HTTP server serving ECB's daily file: retries with backoff after
failures, the last successful import in /health/ready and /metrics, and a second source for a currency ECB
does not publish (EGP); without one EGP stays absent, never guessed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response

from unified_regions.testing import Running, running_service
from unified_shared.testing import serve_app

DAILY = b"""<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
  <gesmes:subject>Reference rates</gesmes:subject>
  <gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>
  <Cube>
    <Cube time='2026-11-27'>
      <Cube currency='USD' rate='1.0512'/>
      <Cube currency='JPY' rate='161.20'/>
      <Cube currency='ZAR' rate='19.4410'/>
    </Cube>
  </Cube>
</gesmes:Envelope>
"""
EGP_FILE = b"Date,EGP,\n2026-11-27,51.2345,\n2026-11-26,51.1000,\n"


class RatesServer:
    """Serves the daily file after ``fail_first`` 503 answers, and an EGP file in ECB's CSV shape."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.requests = 0
        self.app = FastAPI()

        @self.app.get("/eurofxref-daily.xml")
        async def daily() -> Response:
            self.requests += 1
            if self.requests <= self.fail_first:
                return Response("busy", status_code=503)
            return Response(DAILY, media_type="text/xml")

        @self.app.get("/egp.csv")
        async def egp() -> Response:
            return Response(EGP_FILE, media_type="text/csv")


@pytest.fixture
async def rates_server() -> AsyncIterator[tuple[RatesServer, str]]:
    server = RatesServer(fail_first=2)
    async with serve_app(server.app) as base:
        yield server, base


async def until_imported(svc: Running, deadline_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + deadline_s
    async with httpx.AsyncClient(base_url=svc.base) as http:
        while True:
            health = (await http.get("/health/ready")).json()
            if health.get("fx_last_import") or time.monotonic() > deadline:
                return dict(health)
            await asyncio.sleep(0.1)  # polling a condition with a deadline


async def test_scheduled_import_retries_then_publishes_with_a_second_source_for_egp(
    fresh_db: str, kafka_bootstrap: str, rates_server: tuple[RatesServer, str]
) -> None:
    server, base = rates_server
    async with running_service(
        fresh_db,
        kafka_bootstrap,
        fx_fetch_enabled=True,
        fx_fetch_url=f"{base}/eurofxref-daily.xml",
        fx_fetch_backoff_s=0.05,
        fx_fetch_interval_s=3600,
        fx_extra_sources={"EGP": f"{base}/egp.csv"},
    ) as svc:
        health = await until_imported(svc)
        assert health["fx_last_rate_date"] == "2026-11-27" and health["fx_last_error"] is None, health
        assert server.requests == 3  # two 503 answers, retried with backoff, then the file
        async with svc.client(svc.token(uuid.uuid4())) as http:
            day = (await http.get("/v1/fx-rates/2026-11-27")).json()
            metrics = (await http.get("/metrics")).text
    assert day["rates"]["USD"] == "1.0512" and day["rates"]["ZAR"] == "19.4410"
    assert day["rates"]["EGP"] == "51.2345"
    assert "second source" in day["derived"]["EGP"]
    assert "fetched" in day["source"]
    assert "regions_fx_last_import_timestamp_seconds" in metrics


async def test_without_a_source_for_egp_it_stays_absent(
    fresh_db: str, kafka_bootstrap: str, rates_server: tuple[RatesServer, str]
) -> None:
    server, base = rates_server
    server.fail_first = 0
    async with running_service(
        fresh_db, kafka_bootstrap, fx_fetch_enabled=True, fx_fetch_url=f"{base}/eurofxref-daily.xml"
    ) as svc:
        await until_imported(svc)
        async with svc.client(svc.token(uuid.uuid4())) as http:
            day = (await http.get("/v1/fx-rates/2026-11-27")).json()
    assert "EGP" not in day["rates"] and "USD" in day["rates"]
