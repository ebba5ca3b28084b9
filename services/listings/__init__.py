"""Marks the service folder as a package so that its tests import as listings.tests.* (unique across services)."""
