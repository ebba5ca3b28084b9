"""Kept for callers that build the app by its old name (other services' tests): see ``bootstrap``."""

from unified_billing.bootstrap import CONSUMED_TOPICS, MIGRATIONS, bootstrap

create_service_app = bootstrap

__all__ = ["CONSUMED_TOPICS", "MIGRATIONS", "bootstrap", "create_service_app"]
