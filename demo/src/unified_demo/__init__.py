"""The unified-seller demo: a realistic multi-marketplace seller driven through the public APIs."""
