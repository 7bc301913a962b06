"""Portico's own tests use the same fixtures partners get (engine.testing, loaded as a pytest plugin)."""

from stripe_fixtures import localstripe, localstripe_server  # noqa: F401 - the Stripe tests' server
from s3_fixtures import s3, s3_server  # noqa: F401 - the storage tests' S3 server (moto)

import pytest  # noqa: E402

from engine import outbound  # noqa: E402
from engine.testing import LONG  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "long: the long variant of a reliability test; runs with PORTICO_LONG_TESTS=1"
    )


def pytest_collection_modifyitems(config, items):
    if LONG:
        return
    skip = pytest.mark.skip(reason="long variant: set PORTICO_LONG_TESTS=1")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def dns(monkeypatch):
    """Names only this test knows: name -> [addresses] (what public DNS would answer)."""
    table: dict[str, list[str]] = {}
    calls: list[str] = []
    real = outbound.resolve_host

    def resolve(host, port):
        calls.append(host)
        return table[host] if host in table else real(host, port)

    monkeypatch.setattr(outbound, "resolve_host", resolve)
    resolve.table, resolve.calls = table, calls
    return resolve
