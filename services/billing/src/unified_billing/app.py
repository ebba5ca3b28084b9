"""The names other packages and tests know the service by; the wiring itself is in ``bootstrap``."""

from __future__ import annotations

from unified_billing.bootstrap import bootstrap as create_service_app
from unified_billing.runtime import CONSUMED_TOPICS, MIGRATIONS

__all__ = ["CONSUMED_TOPICS", "MIGRATIONS", "create_service_app"]
