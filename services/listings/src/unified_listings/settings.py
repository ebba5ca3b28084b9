"""Listings settings from the environment (DESIGN section 9: port 8060, database ``listings``)."""

from __future__ import annotations

from unified_shared.config import ServiceSettings


class Settings(ServiceSettings):
    """Environment: DATABASE_URL, HTTP_PORT, KAFKA_BOOTSTRAP_SERVERS, IDENTITY_ISSUER, ..."""

    service_name: str = "listings"
    http_port: int = 8060
    database_url: str = "postgresql://postgres@127.0.0.1:55432/listings"
