"""Portico's own tests use the same fixtures partners get (engine.testing, loaded as a pytest plugin)."""
from stripe_fixtures import localstripe, localstripe_server  # noqa: F401 - the Stripe tests' server
