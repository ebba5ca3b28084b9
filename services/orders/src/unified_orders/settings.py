"""Settings of one regional orders instance: REGION decides the port, database and event source."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from unified_shared.catalog import ApiRegion
from unified_shared.regional import RegionalSettings


class Settings(RegionalSettings):
    """``REGION`` (NA|EU|FE) picks the defaults (see ``RegionalSettings``); a new order needs an opened
    marketplace (``PARTICIPATION_*``). ``INGEST_PARALLEL``: ingest units of work running at once (requests
    arriving while that many run share the next one, see ``group_commit``)."""

    SERVICE: ClassVar[str] = "orders"
    DEFAULT_PORTS: ClassVar[dict[ApiRegion, int]] = {ApiRegion.NA: 8011, ApiRegion.EU: 8012, ApiRegion.FE: 8013}
    service_name: str = "orders-na"
    ingest_parallel: int = Field(2, ge=1, le=64)
