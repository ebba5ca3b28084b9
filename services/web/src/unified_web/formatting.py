"""Money, numbers and instants per the browser's locale (babel, CLDR data). Amounts come from the APIs as
decimal strings and stay Decimal; babel uses each currency's own digits (JPY none)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent

# Locales of the marketplaces' languages; Accept-Language picks among them.
SUPPORTED = ("en_US", "en_GB", "en_CA", "de_DE", "fr_FR", "fr_CA", "es_MX", "ja_JP", "pt_BR", "it_IT", "es_ES")


def negotiate(accept_language: str | None, default: str = "en_US") -> str:
    """The best supported locale for an Accept-Language header (quality values honoured)."""
    preferred: list[tuple[float, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        if not tag or tag == "*":
            continue
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        preferred.append((quality - index * 1e-6, tag.replace("-", "_")))
    tags = [tag for _, tag in sorted(preferred, reverse=True)]
    found = Locale.negotiate(tags, list(SUPPORTED), sep="_") if tags else None
    return str(found) if found else default


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def money(value: Any, currency: str, locale: str) -> str:
    amount = _decimal(value)
    if amount is None:
        return "-"
    try:
        return format_currency(amount, currency, locale=locale)
    except (UnknownLocaleError, ValueError):
        return f"{amount} {currency}"


def number(value: Any, locale: str) -> str:
    amount = _decimal(value)
    return "-" if amount is None else format_decimal(amount, locale=locale)


def percent(value: Any, locale: str) -> str:
    amount = _decimal(value)
    return "-" if amount is None else format_percent(amount, format="#,##0.0%", locale=locale)


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def instant(value: Any, locale: str) -> str:
    """An instant in UTC (the platform's time), with the zone said."""
    moment = _instant(value)
    if moment is None:
        return "-"
    return format_datetime(moment, format="medium", tzinfo=UTC, locale=locale) + " UTC"


def day(value: Any, locale: str) -> str:
    moment = _instant(value) if "T" in str(value) else None
    if moment is not None:
        return format_date(moment.date(), format="medium", locale=locale)
    try:
        return format_date(date.fromisoformat(str(value)[:10]), format="medium", locale=locale)
    except ValueError:
        return "-"
