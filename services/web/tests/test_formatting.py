"""Money and dates per the browser's locale (babel / CLDR)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from unified_web import formatting


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de_DE"),
        ("en-GB", "en_GB"),
        ("fr-CA,fr;q=0.5", "fr_CA"),
        ("ja", "ja_JP"),
        ("en;q=0.2, de;q=0.9", "de_DE"),
        ("xx-YY", "en_US"),
        ("", "en_US"),
        (None, "en_US"),
        ("en;q=abc", "en_US"),
    ],
)
def test_locale_from_accept_language(header: str | None, locale: str) -> None:
    assert formatting.negotiate(header) == locale


def test_money_uses_each_currencys_digits() -> None:
    assert formatting.money("1234.5", "USD", "en_US") == "$1,234.50"
    assert formatting.money(Decimal("1234.5"), "EUR", "de_DE") == "1.234,50\xa0€"
    assert formatting.money("799", "JPY", "en_US") == "¥799"
    assert formatting.money("97.93", "MXN", "es_MX") == "$97.93"
    assert formatting.money(None, "USD", "en_US") == "-"
    assert formatting.money("not a number", "USD", "en_US") == "-"


def test_instants_are_said_in_utc() -> None:
    assert formatting.instant("2026-10-30T20:46:00Z", "en_US") == "Oct 30, 2026, 8:46:00\u202fPM UTC"
    assert formatting.day("2026-10-30", "de_DE") == "30.10.2026"
    assert formatting.instant("garbage", "en_US") == "-"
