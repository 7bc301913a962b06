"""The small engine helpers that replaced copies: request kind, money, plugin state."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from engine import money
from engine.context import Context
from engine.registry import PluginState, request_kind


@pytest.mark.parametrize(
    "path, name, page",
    [
        ("/", "portal", True),
        ("/billing/invoices", "portal", True),
        ("/api/v1/services", "api", False),
        ("/staff", "staff", True),
        ("/staff/customers/3", "staff", True),
        ("/api/v1/staff/usage", "staff-api", False),
        ("/webhooks/stripe", "machine", False),
        ("/healthz", "machine", False),
        ("/static/app.css", "machine", False),
        ("/staffing", "portal", True),
    ],
)
def test_request_kind_is_decided_from_the_path(path, name, page):
    kind = request_kind(path)
    assert (kind.name, kind.page) == (name, page)


@pytest.mark.parametrize(
    "amount, currency, major",
    [
        (1050, "GBP", "10.50"),
        (-5, "GBP", "-0.05"),
        (0, "GBP", "0.00"),
        (1050, "JPY", "1050"),
        (1050, "BHD", "1.050"),
        (10**15, "EUR", "10000000000000.00"),
    ],
)
def test_money_converts_both_ways(amount, currency, major):
    assert money.plain(amount, currency) == major
    assert money.to_minor(Decimal(major), currency) == amount
    assert money.as_json(amount, currency) == {"amount": amount, "currency": currency}


def test_money_display_follows_the_locale():
    assert money.display(1050, "GBP", "en_GB") == "£10.50"
    assert money.display(1050, "GBP", "zh_Hans") == "£10.50"
    assert money.display(1050, "JPY", "en") == "¥1,050"


def test_plugin_state_builds_once_per_class_even_across_threads():
    state, built = PluginState(), []

    class Limiter:
        def __init__(self):
            built.append(self)

    found = []
    threads = [
        threading.Thread(target=lambda: found.append(state.get(Limiter, Limiter))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and all(f is built[0] for f in found)
    assert PluginState().get(Limiter, Limiter) is not built[0]  # another app, its own


def test_ctx_once_computes_a_value_once_per_request():
    calls = []
    ctx = Context()
    assert ctx.once("acme.types", lambda: calls.append(1) or {"mobile"}) == {"mobile"}
    assert ctx.once("acme.types", lambda: calls.append(1) or set()) == {"mobile"}
    assert calls == [1] and Context().once("acme.types", set) == set()
