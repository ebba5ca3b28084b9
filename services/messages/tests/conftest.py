"""``issuer`` (a test token issuer) and ``start_messages(region, *, clock, **settings)`` (an instance on a
fresh database; ``clock`` decides "now" for default times and overdue flags)."""

from unified_messages.bootstrap import bootstrap
from unified_messages.settings import Settings
from unified_shared.testing import issuer_fixture, regional_fixture

issuer = issuer_fixture()
start_messages = regional_fixture("start_messages", bootstrap, Settings)
