"""The benchmark registry and runner.

A benchmark is an async function registered with ``@benchmark(...)``: it gets a ``Context`` (scratch
databases, the broker, the run length) and returns one or more ``Figure``s, each a project number beside
the raw baseline it is compared to. The runner runs every benchmark ``--runs`` times (default 3), takes
medians, prints the table with the targets (pass/miss: printed, never asserted) and writes JSON.

To add a figure: a module ``bench/bench_<topic>.py`` with a registered function; ``MODULES`` lists them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

MODULES = [
    "bench.bench_eventstore",
    "bench.bench_relay",
    "bench.bench_http",
    "bench.bench_read_side",
    "bench.bench_overview",
]
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True, slots=True)
class Target:
    """What the figure should reach: ``ratio`` (project / baseline) or ``value`` (project alone), at least."""

    ratio: float | None = None
    value: float | None = None

    def describe(self) -> str:
        if self.ratio is not None:
            return f"ratio >= {self.ratio:g}"
        if self.value is not None:
            return f">= {self.value:,.0f}"
        return ""

    def met(self, project: float, ratio: float | None) -> bool | None:
        if self.ratio is not None:
            return None if ratio is None else ratio >= self.ratio
        if self.value is not None:
            return project >= self.value
        return None


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    unit: str
    project: float
    baseline: float | None = None
    baseline_name: str = ""
    target: Target = field(default_factory=Target)
    extra: dict[str, float] = field(default_factory=dict)  # informational (latencies...), medians too


@dataclass(slots=True)
class Context:
    pg_admin_dsn: str
    kafka: str
    seconds: float
    quick: bool
    _databases: list[str] = field(default_factory=list)

    async def database(self, prefix: str = "bench") -> str:
        """A scratch database, dropped at the end of the run."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(self.pg_admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self._databases.append(name)
        return self.pg_admin_dsn.rsplit("/", 1)[0] + f"/{name}"

    async def drop_databases(self) -> None:
        conn = await asyncpg.connect(self.pg_admin_dsn)
        try:
            for name in self._databases:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        self._databases.clear()


BenchFn = Callable[[Context], Awaitable[list[Figure]]]


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str
    about: str
    fn: BenchFn


REGISTRY: dict[str, Benchmark] = {}


def benchmark(name: str, about: str) -> Callable[[BenchFn], BenchFn]:
    def register(fn: BenchFn) -> BenchFn:
        REGISTRY[name] = Benchmark(name, about, fn)
        return fn

    return register


@contextlib.asynccontextmanager
async def timed() -> AsyncIterator[Callable[[], float]]:
    """``async with timed() as elapsed: ...``; ``elapsed()`` is the seconds taken (also after the block)."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


def _median_figures(runs: list[list[Figure]]) -> list[Figure]:
    out = []
    for same in zip(*runs, strict=True):
        first = same[0]
        baselines = [f.baseline for f in same if f.baseline is not None]
        extra = {k: statistics.median(f.extra[k] for f in same if k in f.extra) for k in first.extra}
        out.append(
            Figure(
                first.name,
                first.unit,
                statistics.median(f.project for f in same),
                statistics.median(baselines) if baselines else None,
                first.baseline_name,
                first.target,
                extra,
            )
        )
    return out


def _row(f: Figure) -> dict[str, Any]:
    ratio = f.project / f.baseline if f.baseline else None
    met = f.target.met(f.project, ratio)
    return {**asdict(f), "ratio": ratio, "target": f.target.describe(), "met": met}


def _num(value: float) -> str:
    return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"


def _print(rows: list[dict[str, Any]], runs: int) -> None:
    head = f"{'figure':<44} {'project':>15} {'baseline (raw, same machine)':>41} {'ratio':>6}  target"
    print(f"\nmedians of {runs} runs, {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(head)
    print("-" * len(head))
    for r in rows:
        base = f"{_num(r['baseline']):>12} {r['baseline_name'][:28]:<28}" if r["baseline"] is not None else f"{'-':>41}"
        ratio = f"{r['ratio']:>6.2f}" if r["ratio"] is not None else f"{'-':>6}"
        verdict = {True: "pass", False: "MISS", None: ""}[r["met"]]
        print(f"{r['name']:<44} {_num(r['project']):>10} {r['unit']:<4} {base} {ratio}  {r['target']} {verdict}")
        for k, v in r["extra"].items():
            print(f"{'':<46}{k}: {v:,.1f}")


async def run(selected: list[Benchmark], ctx: Context, runs: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for bench in selected:
        print(f"# {bench.name}: {bench.about}", file=sys.stderr, flush=True)
        results = []
        for n in range(runs):
            try:
                results.append(await bench.fn(ctx))
            finally:
                await ctx.drop_databases()
            print(f"#   run {n + 1}/{runs} done", file=sys.stderr, flush=True)
        rows += [_row(f) | {"benchmark": bench.name} for f in _median_figures(results)]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", "5")))
    parser.add_argument("--quick", action="store_true", help="smaller data sets")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    from unified_shared.local_secrets import use_local_admin_login

    use_local_admin_login()  # the local broker wants SASL: benchmarks log in as its admin
    for module in MODULES:
        importlib.import_module(module)
    if args.list:
        for b in REGISTRY.values():
            print(f"{b.name:<16} {b.about}")
        return 0
    unknown = [n for n in args.names if n not in REGISTRY]
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; known: {', '.join(REGISTRY)}")
    selected = [REGISTRY[n] for n in args.names] if args.names else list(REGISTRY.values())
    ctx = Context(
        pg_admin_dsn=os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:55432/postgres"),
        kafka=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        seconds=args.seconds,
        quick=args.quick,
    )
    rows = asyncio.run(run(selected, ctx, args.runs))
    _print(rows, args.runs)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "at": stamp,
        "host": platform.node(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "runs": args.runs,
        "seconds": args.seconds,
        "figures": rows,
    }
    path = RESULTS / f"bench-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0
