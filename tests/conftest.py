"""Portico's own tests use the same fixtures partners get (engine.testing, loaded as a pytest plugin)."""
