"""A load generator in its own process: ``clients`` concurrent keep-alive clients POST for ``seconds``.

``python -m bench.load URL --clients N --seconds S --token T --batch 0|100``: each request carries a new
SP-API order (or a batch of ``--batch`` new orders); prints one JSON line: requests, errors, rps, p50/p99 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from typing import Any

import httpx

DE = "A1PA6795UKMFR9"


def new_order(rng: random.Random) -> dict[str, Any]:
    return {
        "AmazonOrderId": f"{rng.randint(100, 999)}-{rng.randint(0, 9999999):07d}-{rng.randint(0, 9999999):07d}",
        "PurchaseDate": "2026-09-01T10:00:00Z",
        "LastUpdateDate": "2026-09-01T10:05:00Z",
        "OrderStatus": "Unshipped",
        "FulfillmentChannel": "MFN",
        "OrderTotal": {"CurrencyCode": "EUR", "Amount": "19.99"},
        "NumberOfItemsShipped": 0,
        "NumberOfItemsUnshipped": 2,
        "MarketplaceId": DE,
    }


async def run(url: str, clients: int, seconds: float, token: str, batch: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    stop = 0.0

    async def client(http: httpx.AsyncClient, n: int) -> None:
        nonlocal errors
        rng = random.Random(n * 7919 + int(time.time() * 1000))
        while time.perf_counter() < stop:
            body = {"Orders": [new_order(rng) for _ in range(batch)]} if batch else new_order(rng)
            t0 = time.perf_counter()
            response = await http.post(url, json=body)
            latencies.append(time.perf_counter() - t0)
            if response.status_code != 200:
                errors += 1

    # One client (one TLS context, a pool of keep-alive connections); the clock starts once it exists.
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(headers=headers, timeout=60.0, limits=limits, trust_env=False) as http:
        started = time.perf_counter()
        stop = started + seconds
        await asyncio.gather(*(client(http, n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies) or [0.0]
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--token", default="")
    parser.add_argument("--batch", type=int, default=0)
    a = parser.parse_args()
    print(json.dumps(asyncio.run(run(a.url, a.clients, a.seconds, a.token, a.batch))))
