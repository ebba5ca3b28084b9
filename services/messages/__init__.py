"""Marks the service folder as a package so that its tests import as messages.tests.* (unique across services)."""
