"""The orders API in its own process (as deployed: ``python -m unified_orders serve``, a regional
instance with its relay) against a FastAPI hello endpoint under the same uvicorn settings; load from a
separate process (bench/load.py). Figures: single-order POST with 1 and 32 clients, how 32 clients scale
over 1, and batch ingest (100-order batches) in orders/s per regional instance."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator

import httpx

from bench.harness import Context, Figure, Target, benchmark
from unified_shared.testing import TestIssuer

PY = sys.executable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def _process(args: list[str], env: dict[str, str], ready_url: str) -> AsyncIterator[None]:
    proc = await asyncio.create_subprocess_exec(
        *args, env={**os.environ, **env}, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as http:
            while True:
                if proc.returncode is not None:
                    err = (await proc.stderr.read()).decode()[-2000:] if proc.stderr else ""
                    raise RuntimeError(f"{args} exited: {err}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(ready_url, timeout=2)).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{args} not ready in 60 s")
                await asyncio.sleep(0.2)
        yield
    finally:
        if proc.returncode is None:
            proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 10)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def _load(url: str, clients: int, seconds: float, token: str = "", batch: int = 0) -> dict[str, float]:
    proc = await asyncio.create_subprocess_exec(
        PY, "-m", "bench.load", url, "--clients", str(clients), "--seconds", str(seconds),
        "--token", token, "--batch", str(batch),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    result: dict[str, float] = json.loads(out.decode().strip().splitlines()[-1])
    if result["errors"]:
        print(f"#   {url}: {result['errors']:.0f} of {result['requests']:.0f} requests failed", file=sys.stderr)
    return result


@benchmark("http", "POST one order (1 and 32 clients) vs FastAPI hello, same uvicorn; batch ingest orders/s")
async def http_bench(ctx: Context) -> list[Figure]:
    issuer = TestIssuer()
    token = issuer.mint(account_id=uuid.uuid4(), permissions=["orders"], ttl_s=3600)
    orders_port, hello_port = _free_port(), _free_port()
    async with issuer.serve() as jwks_url:
        env = {
            "REGION": "EU",
            "DATABASE_URL": await ctx.database("bench_orders"),
            "HTTP_PORT": str(orders_port),
            "KAFKA_BOOTSTRAP_SERVERS": ctx.kafka,
            "IDENTITY_ISSUER": issuer.issuer,
            "IDENTITY_JWKS_URL": jwks_url,
            "LOG_LEVEL": "WARNING",
        }
        base = f"http://127.0.0.1:{orders_port}"
        hello = f"http://127.0.0.1:{hello_port}"
        async with (
            _process([PY, "-m", "unified_orders", "serve"], env, f"{base}/health/ready"),
            _process([PY, "-m", "bench.hello", str(hello_port)], {}, f"{hello}/health/ready"),
        ):
            await _load(f"{base}/orders/v0/orders", 4, 1.0, token)  # warm up (JWKS, plans, pools)
            await _load(f"{hello}/hello", 4, 1.0)
            one = await _load(f"{base}/orders/v0/orders", 1, ctx.seconds, token)
            hello_one = await _load(f"{hello}/hello", 1, ctx.seconds)
            many = await _load(f"{base}/orders/v0/orders", 32, ctx.seconds, token)
            hello_many = await _load(f"{hello}/hello", 32, ctx.seconds)
            batch = await _load(f"{base}/orders/v0/orders", 4, ctx.seconds, token, batch=100)
    return [
        Figure(
            "POST one order, 1 client", "rq/s", one["rps"], hello_one["rps"], "FastAPI hello, 1 client",
            extra={"p50 ms": one["p50_ms"], "p99 ms": one["p99_ms"]},
        ),
        Figure(
            "POST one order, 32 clients", "rq/s", many["rps"], hello_many["rps"], "FastAPI hello, 32 clients",
            Target(ratio=0.3), extra={"p50 ms": many["p50_ms"], "p99 ms": many["p99_ms"]},
        ),
        Figure(
            "POST one order, 32 clients / 1 client", "x", many["rps"] / one["rps"],
            hello_many["rps"] / hello_one["rps"], "hello, 32 / 1 client", Target(value=4),
        ),
        Figure(
            "batch ingest, 100-order batches, 4 clients", "or/s", batch["rps"] * 100, None, "",
            Target(value=3000), extra={"p50 ms per batch": batch["p50_ms"]},
        ),
    ]  # fmt: skip
