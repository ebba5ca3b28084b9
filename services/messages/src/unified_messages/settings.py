"""Settings of one regional buyer-messages instance: REGION decides the port, database and event source."""

from __future__ import annotations

from pydantic import model_validator

from unified_shared.catalog import ApiRegion
from unified_shared.config import ServiceSettings

DEFAULT_PORTS = {ApiRegion.NA: 8021, ApiRegion.EU: 8022, ApiRegion.FE: 8023}
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:55432/messages_{region}"


class Settings(ServiceSettings):
    """``REGION`` (NA|EU|FE) picks the defaults; ``HTTP_PORT`` and ``DATABASE_URL`` still override them."""

    region: ApiRegion = ApiRegion.NA
    service_name: str = "messages-na"
    # A buyer message that opens a thread needs the marketplace opened by the account (learned from
    # regions.subscriptions.v1); see the orders service for the wait / settle rule.
    participation_required: bool = True
    participation_wait_s: float = 2.0
    participation_settle_s: float = 0.5

    @model_validator(mode="after")
    def _regional_defaults(self) -> Settings:
        explicit = self.model_fields_set
        region = self.region.value.lower()
        if "service_name" not in explicit:
            self.service_name = f"messages-{region}"
        if "http_port" not in explicit:
            self.http_port = DEFAULT_PORTS[self.region]
        if "database_url" not in explicit:
            self.database_url = DEFAULT_DATABASE.format(region=region)
        return self
