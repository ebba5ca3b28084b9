"""Kept for callers that build the app by its old name: see ``bootstrap``."""

from unified_web.bootstrap import MIGRATIONS, bootstrap

create_service_app = bootstrap

__all__ = ["MIGRATIONS", "bootstrap", "create_service_app"]
