"""Makes the test folder below importable under a unique package name (pytest importlib mode)."""
