"""Marks the service folder as a package so that its tests import as orders.tests.* (unique across services)."""
