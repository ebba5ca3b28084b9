"""Kept for callers that build the app by its old name (other services' tests): see ``bootstrap``."""

from unified_identity.bootstrap import MIGRATIONS, bootstrap

create_service_app = bootstrap

__all__ = ["MIGRATIONS", "bootstrap", "create_service_app"]
