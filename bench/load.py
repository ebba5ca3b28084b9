"""A load generator in its own process: ``clients`` concurrent keep-alive clients POST for ``seconds``.

``python -m bench.load URL --clients N --seconds S --token T[,T2,...] --batch 0|100``: each request carries a
new SP-API order (or a batch of ``--batch`` new orders); with several tokens (comma-separated) client n posts
with token n modulo their number (one seller each); prints one JSON line: requests, errors, rps, p50/p99 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import time
from typing import Any
from urllib.parse import urlsplit

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


class _Connection:
    """One keep-alive HTTP/1.1 connection on bare asyncio streams: the client costs a few microseconds a
    request, so the figures measure the server (httpx's pool spends more CPU per request than a hello
    server does, and with 32 clients on 2 cores it, not the server, set the pace)."""

    def __init__(self, host: str, port: int, path: str, headers: dict[str, str]) -> None:
        self.host, self.port, self.path = host, port, path
        self.head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(
            f"POST {self.path} HTTP/1.1\r\n{self.head}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        await self.reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def run(url: str, clients: int, seconds: float, token: str, batch: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    target = urlsplit(url)
    tokens = [t for t in token.split(",") if t]  # several: client n posts as tokens[n % len] (its account)
    conns = [
        _Connection(
            target.hostname or "127.0.0.1",
            target.port or 80,
            target.path,
            {"Authorization": f"Bearer {tokens[n % len(tokens)]}"} if tokens else {},
        )
        for n in range(clients)
    ]
    await asyncio.gather(*(c.post(b"{}") for c in conns))  # connected (and warm) before the clock starts
    stop = 0.0

    async def client(conn: _Connection, n: int) -> None:
        nonlocal errors
        rng = random.Random(n * 7919 + int(time.time() * 1000))
        while time.perf_counter() < stop:
            body = {"Orders": [new_order(rng) for _ in range(batch)]} if batch else new_order(rng)
            data = json.dumps(body).encode()
            t0 = time.perf_counter()
            status = await conn.post(data)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                errors += 1

    started = time.perf_counter()
    stop = started + seconds
    try:
        await asyncio.gather(*(client(c, n) for n, c in enumerate(conns)))
    finally:
        await asyncio.gather(*(c.close() for c in conns))
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
