"""Bounds on every value accepted from outside (DESIGN section 11): one rule, used by every service.

Each bound is a pydantic ``Annotated`` type, so it is enforced where a request is parsed and published in
the OpenAPI document (a client or a fuzzer can build valid calls from it). A violation is a
``ValueError``/``ValidationError`` that ``problems`` turns into 422 problem+json naming the field.

The rules:
- Instants of facts (a purchase, a message, a refund) lie in ``FACT_MIN`` (2000-01-01) .. now + 1 day
  (``FACT_FUTURE``: clocks drift). Filters and "as of" query parameters may reach wider, ``QUERY_MIN``
  (1970-01-01) .. ``QUERY_MAX`` (2100-01-01), still far from the year 1 and 9999 edges where PostgreSQL and
  Python disagree (``-infinity``, overflow). Both need a UTC offset.
- Integers fit their column: ``Int32`` is PostgreSQL's INT; counts are ``Count`` (0 .. INT max).
- Amounts are decimal strings of at most ``AMOUNT_INT_DIGITS`` (12) integer digits and ``AMOUNT_MAX_DECIMALS``
  (6) decimals; ``check_minor_units`` then holds them to the currency's ISO 4217 minor unit.
- Text carries no NUL, no other C0/C1 control character (``Text`` keeps TAB, CR and LF), no lone surrogate,
  no U+2028/U+2029; ``Line`` refuses CR/LF as well (values that end up in a mail header or a subject line).
  Every string has a length limit (``Field(max_length=...)`` of the field); identifiers are ``Ident``.
- Cursors are base64url of a JSON object without NaN/Infinity (``cursor_json``); billing periods are
  ``YYYY-MM`` within ``PERIOD_MIN_YEAR`` .. ``PERIOD_MAX_YEAR``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StrictInt

from unified_shared.catalog import all_marketplaces
from unified_shared.money import UnknownCurrency, minor_units

FACT_MIN = datetime(2000, 1, 1, tzinfo=UTC)
FACT_FUTURE = timedelta(days=1)
QUERY_MIN = datetime(1970, 1, 1, tzinfo=UTC)
QUERY_MAX = datetime(2100, 1, 1, tzinfo=UTC)
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
AMOUNT_INT_DIGITS = 12
AMOUNT_MAX_DECIMALS = 6
PERIOD_MIN_YEAR = 2000
PERIOD_MAX_YEAR = 2100
CURSOR_MAX = 2048

# Characters refused everywhere: C0 controls but TAB/LF/CR, DEL, C1 controls, line/paragraph separators.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# JSON-schema patterns (ECMA regex) mirroring the checks, so generated values are mostly valid.
TEXT_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$"
LINE_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$"
AMOUNT_PATTERN = f"^\\d{{1,{AMOUNT_INT_DIGITS}}}(\\.\\d{{1,{AMOUNT_MAX_DECIMALS}}})?$"
PERIOD_PATTERN = "^\\d{4}-\\d{2}$"
CURSOR_PATTERN = "^[A-Za-z0-9_-]*$"


def now_utc() -> datetime:
    return datetime.now(UTC)


# -- instants ------------------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


def check_fact_instant(value: datetime, now: datetime | None = None) -> datetime:
    """A fact's instant, in UTC, within 2000-01-01 .. now + 1 day; raises ``ValueError`` otherwise."""
    if value.tzinfo is None:
        raise ValueError("needs a UTC offset")
    value = _utc(value)
    latest = (now or now_utc()) + FACT_FUTURE
    if not FACT_MIN <= value <= latest:
        raise ValueError(f"must lie in {FACT_MIN.date().isoformat()} .. now + 1 day")
    return value


def check_query_instant(value: datetime) -> datetime:
    """A filter's instant, in UTC, within 1970-01-01 .. 2100-01-01; raises ``ValueError`` otherwise."""
    if value.tzinfo is None:
        raise ValueError("needs a UTC offset")
    value = _utc(value)
    if not QUERY_MIN <= value <= QUERY_MAX:
        raise ValueError(f"must lie in {QUERY_MIN.date().isoformat()} .. {QUERY_MAX.date().isoformat()}")
    return value


def _no_huge_year(value: Any) -> Any:
    """Refuse years the parser would turn into an overflow before our range check sees them."""
    if isinstance(value, str) and re.match(r"^\s*[+-]?\d{5,}", value):
        raise ValueError("the year must have four digits")
    return value


_INSTANT_DOC = "ISO 8601 date-time with a UTC offset"
Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_no_huge_year),
    AfterValidator(check_fact_instant),
    Field(description=f"{_INSTANT_DOC}, within 2000-01-01 .. now + 1 day"),
]
QueryInstant = Annotated[
    AwareDatetime,
    BeforeValidator(_no_huge_year),
    AfterValidator(check_query_instant),
    Field(description=f"{_INSTANT_DOC}, within 1970-01-01 .. 2100-01-01"),
]


def _fact_assume_utc(value: datetime) -> datetime:
    return check_fact_instant(value if value.tzinfo is not None else value.replace(tzinfo=UTC))


# For fields documented as "naive = UTC" (regions' effective times): same range as ``Instant``.
InstantAssumeUtc = Annotated[
    datetime,
    BeforeValidator(_no_huge_year),
    AfterValidator(_fact_assume_utc),
    Field(description="ISO 8601 date-time (naive = UTC), within 2000-01-01 .. now + 1 day"),
]


def check_query_date(value: date) -> date:
    if not QUERY_MIN.date() <= value <= QUERY_MAX.date():
        raise ValueError(f"must lie in {QUERY_MIN.date().isoformat()} .. {QUERY_MAX.date().isoformat()}")
    return value


QueryDate = Annotated[date, AfterValidator(check_query_date), Field(description="YYYY-MM-DD, 1970 .. 2100")]

# -- integers ------------------------------------------------------------------------------------------

Int32 = Annotated[StrictInt, Field(ge=INT32_MIN, le=INT32_MAX)]
Count = Annotated[StrictInt, Field(ge=0, le=INT32_MAX)]


def page_size(maximum: int) -> Any:
    """A page size parameter type: 1 .. ``maximum``."""
    return Annotated[int, Field(ge=1, le=maximum)]


# -- amounts -------------------------------------------------------------------------------------------


def check_amount(value: Any) -> str:
    """A non-negative decimal string within the documented precision (kept as received)."""
    if not isinstance(value, str):
        raise ValueError('must be a decimal string such as "12.09"')
    text = value.strip()
    if not re.fullmatch(r"[+-]?\d+(\.\d+)?", text):
        raise ValueError(f'must be a decimal string such as "12.09", got {value[:40]!r}')
    if text.startswith("-") and Decimal(text) != 0:
        raise ValueError("must not be negative")
    whole, _, decimals = text.lstrip("+-").partition(".")
    if len(whole.lstrip("0")) > AMOUNT_INT_DIGITS:
        raise ValueError(f"must have at most {AMOUNT_INT_DIGITS} integer digits")
    if len(decimals) > AMOUNT_MAX_DECIMALS:
        raise ValueError(f"must have at most {AMOUNT_MAX_DECIMALS} decimals")
    return text


def check_minor_units(amount: str | Decimal, currency: str) -> Decimal:
    """The amount as a ``Decimal`` if it has at most the currency's minor units; raises ``ValueError``."""
    try:
        digits = minor_units(currency)
        parsed = Decimal(amount)
    except (UnknownCurrency, InvalidOperation):
        raise ValueError(f"{amount!s} {currency} is not a valid amount") from None
    exponent = parsed.as_tuple().exponent
    if not isinstance(exponent, int) or -exponent > digits:
        raise ValueError(f"has more decimals than {currency} allows ({digits})")
    return parsed


AmountStr = Annotated[
    str,
    BeforeValidator(check_amount),
    Field(
        json_schema_extra={"pattern": AMOUNT_PATTERN},
        max_length=AMOUNT_INT_DIGITS + AMOUNT_MAX_DECIMALS + 2,
        description=f"decimal string, at most {AMOUNT_INT_DIGITS} integer digits, not negative, "
        "at most the currency's minor units",
    ),
]
CurrencyCode = Annotated[str, Field(pattern="^[A-Z]{3}$", description="ISO 4217 code")]

# -- strings -------------------------------------------------------------------------------------------


def check_text(value: str) -> str:
    """No NUL, control character (TAB, CR, LF allowed), line separator or lone surrogate."""
    if _SURROGATE.search(value):
        raise ValueError("must not contain a lone surrogate")
    if _CONTROL.search(value):
        raise ValueError("must not contain NUL or control characters")
    return value


def check_line(value: str) -> str:
    """``check_text`` and no TAB, CR or LF: safe in a mail header, a subject or a log line."""
    check_text(value)
    if any(c in value for c in "\t\r\n"):
        raise ValueError("must be a single line (no CR, LF or TAB)")
    return value


# Use with the field's own length limit: ``subject: LineStr = Field(max_length=250)``.
TextStr = Annotated[str, AfterValidator(check_text), Field(json_schema_extra={"pattern": TEXT_PATTERN})]
LineStr = Annotated[str, AfterValidator(check_line), Field(json_schema_extra={"pattern": LINE_PATTERN})]
IDENT_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._:@-]*$"
Ident = Annotated[str, Field(min_length=1, max_length=128, pattern=IDENT_PATTERN)]


# A known SP-API marketplace ID (the catalog's), so generated and hand-written calls name a real one.
MARKETPLACE_IDS = tuple(sorted(m.marketplace_id for m in all_marketplaces()))
CURRENCIES = tuple(sorted({m.currency for m in all_marketplaces()}))
MarketplaceId = Literal[MARKETPLACE_IDS]  # type: ignore[valid-type]
MarketplaceCurrency = Literal[CURRENCIES]  # type: ignore[valid-type]

# -- cursors and periods -------------------------------------------------------------------------------

Cursor = Annotated[
    str, Field(max_length=CURSOR_MAX, pattern=CURSOR_PATTERN, description="opaque, from the previous page")
]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def cursor_json(token: str) -> Any:
    """Decode a base64url JSON cursor; ``ValueError`` if it is malformed or holds NaN/Infinity."""
    if len(token) > CURSOR_MAX:
        raise ValueError("cursor too long")
    try:
        padded = token + "=" * (-len(token) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()), parse_constant=_refuse_constant)
    except (binascii.Error, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError("cursor is not valid") from exc


def check_period(value: str) -> str:
    """``YYYY-MM`` with a month 01..12 and a year within 2000 .. 2100."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", value)
    if not match:
        raise ValueError("must be YYYY-MM")
    year, month = int(match[1]), int(match[2])
    if not 1 <= month <= 12:
        raise ValueError("month must be 01 .. 12")
    if not PERIOD_MIN_YEAR <= year <= PERIOD_MAX_YEAR:
        raise ValueError(f"year must be {PERIOD_MIN_YEAR} .. {PERIOD_MAX_YEAR}")
    return value


Period = Annotated[
    str,
    Field(pattern=PERIOD_PATTERN, description=f"YYYY-MM, {PERIOD_MIN_YEAR} .. {PERIOD_MAX_YEAR}"),
    AfterValidator(check_period),
]
