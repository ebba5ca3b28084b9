"""``issuer`` (a test token issuer) and ``start_orders(region, **settings)`` (an instance on a fresh database)."""

from unified_orders.bootstrap import bootstrap
from unified_orders.settings import Settings
from unified_shared.testing import issuer_fixture, regional_fixture

issuer = issuer_fixture()
start_orders = regional_fixture("start_orders", bootstrap, Settings)
