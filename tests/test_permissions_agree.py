"""The web app offers exactly the permissions identity lets an owner grant a member.

The team page offered orders, messages and reports but not listings: an owner could not give a teammate the
international offers from the web app, and saving a member who held listings (granted through the API) dropped
it, since the form sends the checked boxes as the member's whole set.
"""

from __future__ import annotations

from unified_identity.domain.team import MEMBER_PERMISSIONS
from unified_web import domain


def test_the_team_page_offers_every_permission_identity_grants_members() -> None:
    assert domain.GRANTABLE == MEMBER_PERMISSIONS


def test_a_member_can_be_given_listings_from_the_team_page() -> None:
    body = domain.grant({"permissions": ["orders", "listings"], "all_marketplaces": "1"})
    assert body == {"permissions": ["orders", "listings"], "marketplaces": "*"}
