"""Marks the service folder as a package so that its tests import as seller_view.tests.* (unique across services)."""
