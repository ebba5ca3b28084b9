"""Shared plumbing of unified-seller: what every service really uses, nothing service-specific."""
