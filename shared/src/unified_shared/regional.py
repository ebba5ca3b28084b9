"""Settings of a regional service (one instance per SP-API region NA/EU/FE, e.g. orders, messages).

``REGION`` picks the defaults (service name ``<svc>-<region>``, port, database ``<svc>_<region>``);
``SERVICE_NAME``, ``HTTP_PORT`` and ``DATABASE_URL`` still override them. New orders or threads need the
marketplace opened by the account, learned from regions.subscriptions.v1: an unknown one is waited for at
most ``PARTICIPATION_WAIT_S``; it counts as never opened only once the consumer has caught up
``PARTICIPATION_SETTLE_S`` after the request arrived; else 503 with Retry-After.
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import model_validator

from unified_shared.catalog import ApiRegion
from unified_shared.config import ServiceSettings

REGIONAL_DATABASE = "postgresql://postgres@127.0.0.1:55432/{service}_{region}"


class RegionalSettings(ServiceSettings):
    SERVICE: ClassVar[str]
    DEFAULT_PORTS: ClassVar[dict[ApiRegion, int]]

    region: ApiRegion = ApiRegion.NA
    participation_required: bool = True
    participation_wait_s: float = 2.0
    participation_settle_s: float = 0.5

    @model_validator(mode="after")
    def _regional_defaults(self) -> Self:
        explicit = self.model_fields_set
        region = self.region.value.lower()
        if "service_name" not in explicit:
            self.service_name = f"{self.SERVICE}-{region}"
        if "http_port" not in explicit:
            self.http_port = self.DEFAULT_PORTS[self.region]
        if "database_url" not in explicit:
            self.database_url = REGIONAL_DATABASE.format(service=self.SERVICE, region=region)
        return self
