"""The marketplace catalog (DESIGN section 3): reference data every service needs.

Plan fees are not here: they belong to billing's fee schedule, which has effective dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ApiRegion(StrEnum):
    NA = "NA"
    EU = "EU"
    FE = "FE"


@dataclass(frozen=True, slots=True)
class Marketplace:
    code: str
    marketplace_id: str
    country_code: str
    currency: str
    region: ApiRegion
    name: str
    domain: str
    language: str


_ROWS: tuple[Marketplace, ...] = (
    Marketplace("US", "ATVPDKIKX0DER", "US", "USD", ApiRegion.NA, "Amazon.com", "www.amazon.com", "en_US"),
    Marketplace("CA", "A2EUQ1WTGCTBG2", "CA", "CAD", ApiRegion.NA, "Amazon.ca", "www.amazon.ca", "en_CA"),
    Marketplace("MX", "A1AM78C64UM0Y8", "MX", "MXN", ApiRegion.NA, "Amazon.com.mx", "www.amazon.com.mx", "es_MX"),
    Marketplace("BR", "A2Q3Y263D00KWC", "BR", "BRL", ApiRegion.NA, "Amazon.com.br", "www.amazon.com.br", "pt_BR"),
    Marketplace("UK", "A1F83G8C2ARO7P", "GB", "GBP", ApiRegion.EU, "Amazon.co.uk", "www.amazon.co.uk", "en_GB"),
    Marketplace("DE", "A1PA6795UKMFR9", "DE", "EUR", ApiRegion.EU, "Amazon.de", "www.amazon.de", "de_DE"),
    Marketplace("FR", "A13V1IB3VIYZZH", "FR", "EUR", ApiRegion.EU, "Amazon.fr", "www.amazon.fr", "fr_FR"),
    Marketplace("IT", "APJ6JRA9NG5V4", "IT", "EUR", ApiRegion.EU, "Amazon.it", "www.amazon.it", "it_IT"),
    Marketplace("ES", "A1RKKUPIHCS9HS", "ES", "EUR", ApiRegion.EU, "Amazon.es", "www.amazon.es", "es_ES"),
    Marketplace("NL", "A1805IZSGTT6HS", "NL", "EUR", ApiRegion.EU, "Amazon.nl", "www.amazon.nl", "nl_NL"),
    Marketplace("BE", "AMEN7PMS3EDWL", "BE", "EUR", ApiRegion.EU, "Amazon.com.be", "www.amazon.com.be", "fr_BE"),
    Marketplace("IE", "A28R8C7NBKEWEA", "IE", "EUR", ApiRegion.EU, "Amazon.ie", "www.amazon.ie", "en_IE"),
    Marketplace("SE", "A2NODRKZP88ZB9", "SE", "SEK", ApiRegion.EU, "Amazon.se", "www.amazon.se", "sv_SE"),
    Marketplace("PL", "A1C3SOZRARQ6R3", "PL", "PLN", ApiRegion.EU, "Amazon.pl", "www.amazon.pl", "pl_PL"),
    Marketplace("TR", "A33AVAJ2PDY3EV", "TR", "TRY", ApiRegion.EU, "Amazon.com.tr", "www.amazon.com.tr", "tr_TR"),
    Marketplace("AE", "A2VIGQ35RCS4UG", "AE", "AED", ApiRegion.EU, "Amazon.ae", "www.amazon.ae", "ar_AE"),
    Marketplace("SA", "A17E79C6D8DWNP", "SA", "SAR", ApiRegion.EU, "Amazon.sa", "www.amazon.sa", "ar_SA"),
    Marketplace("IN", "A21TJRUUN4KGV", "IN", "INR", ApiRegion.EU, "Amazon.in", "www.amazon.in", "en_IN"),
    Marketplace("ZA", "AE08WJ6YKNBMC", "ZA", "ZAR", ApiRegion.EU, "Amazon.co.za", "www.amazon.co.za", "en_ZA"),
    Marketplace("EG", "ARBP9OOSHTCHU", "EG", "EGP", ApiRegion.EU, "Amazon.eg", "www.amazon.eg", "ar_EG"),
    Marketplace("JP", "A1VC38T7YXB528", "JP", "JPY", ApiRegion.FE, "Amazon.co.jp", "www.amazon.co.jp", "ja_JP"),
    Marketplace("AU", "A39IBJ37TRP1C6", "AU", "AUD", ApiRegion.FE, "Amazon.com.au", "www.amazon.com.au", "en_AU"),
    Marketplace("SG", "A19VAU5U5O7RUS", "SG", "SGD", ApiRegion.FE, "Amazon.sg", "www.amazon.sg", "en_SG"),
)

MARKETPLACES: dict[str, Marketplace] = {m.marketplace_id: m for m in _ROWS}
_BY_CODE: dict[str, Marketplace] = {m.code: m for m in _ROWS}
_BY_COUNTRY: dict[str, Marketplace] = {m.country_code: m for m in _ROWS}


class UnknownMarketplace(LookupError):
    pass


def all_marketplaces() -> tuple[Marketplace, ...]:
    return _ROWS


def by_id(marketplace_id: str) -> Marketplace:
    try:
        return MARKETPLACES[marketplace_id]
    except KeyError:
        raise UnknownMarketplace(f"unknown marketplace id {marketplace_id!r}") from None


def resolve(ref: str) -> Marketplace:
    """Find a marketplace by SP-API ID, store code or ISO country (``UK`` and ``GB`` both mean the UK store)."""
    key = ref.strip()
    if key in MARKETPLACES:
        return MARKETPLACES[key]
    upper = key.upper()
    if upper in _BY_CODE:
        return _BY_CODE[upper]
    if upper in _BY_COUNTRY:
        return _BY_COUNTRY[upper]
    raise UnknownMarketplace(f"unknown marketplace {ref!r}")
