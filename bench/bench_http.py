"""The orders API in its own process (as deployed: ``python -m unified_orders serve``, a regional
instance with its relay) against a FastAPI hello endpoint under the same uvicorn settings; load from a
separate process (bench/load.py). Figures: single-order POST with 1 and 32 clients (of one seller, and of 32
sellers: one each), how 32 clients scale over 1, and batch ingest (100-order batches) in orders/s per
regional instance. Beside each figure: the CPU milliseconds per request of every process on the path (the
orders process with its relay, the database's backends, the Kafka broker, the load generator), since on a
small machine they share the same cores."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from bench.harness import Context, Figure, Target, benchmark
from bench.load import DE
from unified_shared.contracts.regions import ParticipationOpened
from unified_shared.participations import apply_subscription_event
from unified_shared.testing import TestIssuer

PY = sys.executable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def _process(args: list[str], env: dict[str, str], ready_url: str) -> AsyncIterator[int]:
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
        yield proc.pid
    finally:
        if proc.returncode is None:
            proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 10)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def _process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _database_cpu_s(database: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving ``database`` (Linux /proc)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if title.startswith("postgres:") and f" {database} " in title:
                total += _process_cpu_s(int(proc.name))
    return total


def _listener_pid(port: int) -> int | None:
    """The process listening on TCP ``port`` of this machine (the Kafka broker), if it can be seen (Linux /proc)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                    inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                return int(proc.name)
    return None


def _children_cpu_s() -> float:
    """CPU seconds of this process's children that have ended (the load generator, once it exits)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU jiffies of the whole machine, every core and every process (Linux /proc)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return float(sum(values) - idle), float(sum(values))


async def _load(
    url: str,
    clients: int,
    seconds: float,
    token: str = "",
    batch: int = 0,
    server: int | None = None,
    database: str = "",
    broker: int | None = None,
) -> dict[str, float]:
    """Run the load generator; with ``server`` (a pid), also how much CPU that process used per request and
    how busy the whole machine was (the figures are only as good as the cores left to the server); the CPU
    per request of the database's backends, of the ``broker`` process and of the load generator itself."""
    cpu0, db0 = _process_cpu_s(server) if server else 0.0, _database_cpu_s(database) if database else 0.0
    broker0, load0 = _process_cpu_s(broker) if broker else 0.0, _children_cpu_s()
    (busy0, total0), t0 = _machine_busy(), time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        PY, "-m", "bench.load", url, "--clients", str(clients), "--seconds", str(seconds),
        "--token", token, "--batch", str(batch),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    result: dict[str, float] = json.loads(out.decode().strip().splitlines()[-1])
    wall = time.perf_counter() - t0
    requests = max(1.0, result["requests"])
    result["load generator CPU ms per request"] = 1000 * (_children_cpu_s() - load0) / requests
    busy1, total1 = _machine_busy()
    result["machine busy %"] = 100 * (busy1 - busy0) / max(1.0, total1 - total0)
    if server:
        cpu = _process_cpu_s(server) - cpu0
        result["server CPU %"] = 100 * cpu / wall
        result["server CPU ms per request"] = 1000 * cpu / max(1.0, result["requests"])
    if database:
        result["database CPU ms per request"] = 1000 * (_database_cpu_s(database) - db0) / requests
    if broker:
        result["broker CPU ms per request"] = 1000 * (_process_cpu_s(broker) - broker0) / requests
    if result["errors"]:
        print(f"#   {url}: {result['errors']:.0f} of {result['requests']:.0f} requests failed", file=sys.stderr)
    if result["errors"] > result["requests"] / 100:  # a figure of refusals is no figure
        raise RuntimeError(f"{url}: {result['errors']:.0f} of {result['requests']:.0f} requests failed")
    return result


async def _open_marketplace(database_url: str, accounts: list[uuid.UUID]) -> None:
    """The bench accounts have opened DE, as regions would have told the instance: without it every new order
    is refused by the participation gate (after waiting for it), and the figures measure refusals."""
    conn = await asyncpg.connect(database_url)
    try:
        for account_id in accounts:
            await apply_subscription_event(
                conn, ParticipationOpened(account_id=account_id, marketplace_id=DE, at=datetime.now(UTC))
            )
    finally:
        await conn.close()


def _cpu(result: dict[str, float], prefix: str = "") -> dict[str, float]:
    keys = (
        "server CPU %",
        "server CPU ms per request",
        "database CPU ms per request",
        "broker CPU ms per request",
        "load generator CPU ms per request",
        "machine busy %",
    )
    return {prefix + k: result[k] for k in keys if k in result}


@benchmark("http", "POST one order (1 and 32 clients) vs FastAPI hello, same uvicorn; batch ingest orders/s")
async def http_bench(ctx: Context) -> list[Figure]:
    issuer = TestIssuer()
    account_id = uuid.uuid4()
    token = issuer.mint(account_id=account_id, permissions=["orders"], ttl_s=3600)
    sellers = [uuid.uuid4() for _ in range(32)]  # one client each: many sellers at once
    seller_tokens = ",".join(issuer.mint(account_id=a, permissions=["orders"], ttl_s=3600) for a in sellers)
    orders_port, hello_port = _free_port(), _free_port()
    async with issuer.serve() as jwks_url:
        database_url = await ctx.database("bench_orders")
        env = {
            "REGION": "EU",
            "DATABASE_URL": database_url,
            "HTTP_PORT": str(orders_port),
            "KAFKA_BOOTSTRAP_SERVERS": ctx.kafka,
            "IDENTITY_ISSUER": issuer.issuer,
            "IDENTITY_JWKS_URL": jwks_url,
            "LOG_LEVEL": "WARNING",
        }
        base = f"http://127.0.0.1:{orders_port}"
        hello = f"http://127.0.0.1:{hello_port}"
        async with (
            _process([PY, "-m", "unified_orders", "serve"], env, f"{base}/health/ready") as orders,
            _process([PY, "-m", "bench.hello", str(hello_port)], {}, f"{hello}/health/ready") as hello_pid,
        ):
            await _open_marketplace(database_url, [account_id, *sellers])  # migrated once the instance is ready
            await _load(f"{base}/orders/v0/orders", 4, 1.0, token)  # warm up (JWKS, plans, pools)
            await _load(f"{hello}/hello", 4, 1.0)
            db = database_url.rsplit("/", 1)[1]
            kafka = _listener_pid(int(ctx.kafka.split(",")[0].rsplit(":", 1)[1]))

            async def post(clients: int, batch: int = 0, tokens: str = token) -> dict[str, float]:
                url = f"{base}/orders/v0/orders"
                return await _load(url, clients, ctx.seconds, tokens, batch, server=orders, database=db, broker=kafka)

            one = await post(1)
            hello_one = await _load(f"{hello}/hello", 1, ctx.seconds, server=hello_pid)
            many = await post(32)
            many_sellers = await post(32, tokens=seller_tokens)
            hello_many = await _load(f"{hello}/hello", 32, ctx.seconds, server=hello_pid)
            batch = await post(4, batch=100)
    return [
        Figure(
            "POST one order, 1 client", "rq/s", one["rps"], hello_one["rps"], "FastAPI hello, 1 client",
            extra={"p50 ms": one["p50_ms"], "p99 ms": one["p99_ms"], **_cpu(one), **_cpu(hello_one, "hello ")},
        ),
        Figure(
            "POST one order, 32 clients", "rq/s", many["rps"], hello_many["rps"], "FastAPI hello, 32 clients",
            Target(ratio=0.3),
            extra={"p50 ms": many["p50_ms"], "p99 ms": many["p99_ms"], **_cpu(many), **_cpu(hello_many, "hello ")},
        ),
        Figure(
            "POST one order, 32 clients of 32 sellers", "rq/s", many_sellers["rps"], hello_many["rps"],
            "FastAPI hello, 32 clients",
            extra={"p50 ms": many_sellers["p50_ms"], "p99 ms": many_sellers["p99_ms"], **_cpu(many_sellers)},
        ),
        Figure(
            "POST one order, 32 clients / 1 client", "x", many["rps"] / one["rps"],
            hello_many["rps"] / hello_one["rps"], "hello, 32 / 1 client", Target(value=4),
        ),
        Figure(
            "batch ingest, 100-order batches, 4 clients", "or/s", batch["rps"] * 100, None, "",
            Target(value=3000), extra={"p50 ms per batch": batch["p50_ms"], **_cpu(batch)},
        ),
    ]  # fmt: skip
