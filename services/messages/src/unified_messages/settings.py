"""Settings of one regional buyer-messages instance: REGION decides the port, database and event source."""

from __future__ import annotations

from typing import ClassVar

from unified_shared.catalog import ApiRegion
from unified_shared.regional import RegionalSettings


class Settings(RegionalSettings):
    """``REGION`` (NA|EU|FE) picks the defaults (see ``RegionalSettings``); a buyer message that opens a
    thread needs an opened marketplace (``PARTICIPATION_*``)."""

    SERVICE: ClassVar[str] = "messages"
    DEFAULT_PORTS: ClassVar[dict[ApiRegion, int]] = {ApiRegion.NA: 8021, ApiRegion.EU: 8022, ApiRegion.FE: 8023}
    service_name: str = "messages-na"
