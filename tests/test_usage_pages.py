"""The demo's services and usage through real sign-in sessions (cookies and CSRF), and the demo data itself."""

from __future__ import annotations

import pytest

from engine.demo import seed_demo
from engine.models import Service
from engine.testing import Client
from plugins.usage.models import Bucket, LedgerEntry, UsageEvent


@pytest.fixture
def demo(make_app):
    app = make_app(services={"allow_cancel": True}, usage={"call_records": True})
    app.demo = seed_demo(app)
    return app


def signed_in(app, email: str) -> Client:
    client = Client(app)
    client.login(email)
    return client


@pytest.mark.spec("USE-7")
def test_demo_has_90_days_of_usage_rated_into_consistent_buckets(demo):
    services = demo.demo["services"]
    assert {s.service_type for s in services.values()} >= {"mobile", "broadband", "iptv", "prepaid"}
    assert UsageEvent.select().count() == demo.demo["usage_events"] > 5000
    first = UsageEvent.select().order_by(UsageEvent.occurred_at).first().occurred_at
    last = UsageEvent.select().order_by(UsageEvent.occurred_at.desc()).first().occurred_at
    assert (last - first).days >= 89
    for b in Bucket.select():
        ledger = sum(e.delta for e in LedgerEntry.select().where(LedgerEntry.bucket == b.id))
        assert 0 <= b.remaining == b.initial + ledger, b.name
    # Plans were refilled at each past renewal, and the prepaid line paid from its credit.
    assert LedgerEntry.select().where(LedgerEntry.kind == "renewal").count() >= 6
    prepaid = services["alice_prepaid"]
    assert (
        UsageEvent.select()
        .where((UsageEvent.service == prepaid.id) & (UsageEvent.charged > 0))
        .count()
        > 10
    )


@pytest.mark.spec("SVC-1", "SVC-2", "SVC-3", "SVC-4", "MOB-2")
def test_alice_sees_her_services_and_their_usage(demo):
    alice = signed_in(demo, "alice@example.com")
    services = demo.demo["services"]
    listing = alice.get("/services").text
    for key in ("alice_mobile", "alice_broadband", "alice_tv", "alice_prepaid"):
        assert services[key].name in listing
    assert services["bob_mobile"].name not in listing
    assert 'data-indicator="expiring"' in listing  # the TV ends in a few days
    detail = alice.get(f"/services/{services['alice_mobile'].id}").text
    assert "esim-qr" in detail and 'data-action="usage"' in detail
    for key in ("alice_mobile", "alice_broadband", "alice_tv", "alice_prepaid"):
        page = alice.get(f"/services/{services[key].id}/usage")
        assert page.status_code == 200, key
    prepaid = alice.get(f"/services/{services['alice_prepaid'].id}/usage").text
    assert "Current credit" in prepaid and "Last top-up" in prepaid
    assert "no balances or usage" in alice.get(f"/services/{services['alice_tv'].id}/usage").text
    calls = alice.get(f"/services/{services['alice_mobile'].id}/calls")
    assert calls.status_code == 200 and "+44 7700 900" in calls.text
    api = alice.get("/api/v1/services").json["items"]
    assert len(api) == 4 and all(s["actions"] for s in api)

    # SVC-4: cancelling with the session's CSRF token.
    tv = services["alice_tv"]
    assert (
        alice.post(f"/services/{tv.id}/cancel", form={"confirm": "true"}, csrf=False).status_code
        == 403
    )  # no CSRF token: refused
    done = alice.post(f"/services/{tv.id}/cancel", form={"confirm": "true", "reason": "Streaming"})
    assert done.status_code == 303
    assert Service.get_by_id(tv.id).status == "cancelled"


@pytest.mark.spec("LIM-2", "DASH-1", "NOT-2", "SVC-4")
def test_bob_sees_his_own_and_nothing_of_alices(demo):
    bob = signed_in(demo, "bob@example.com")
    home = bob.get("/").text
    assert "Low data on Mobile - +44 7700 900456" in home
    assert 'data-card="services"' in home and 'data-card="balances"' in home
    assert "Mobile - +44 7700 900457 is suspended" in home
    # His contract mobile's product does not allow cancelling: the page says to call support.
    page = bob.get(f"/services/{demo.demo['services']['bob_mobile'].id}/cancel").text
    assert "cannot be cancelled online" in page
    mobile = demo.demo["services"]["alice_mobile"]
    for path in (
        f"/services/{mobile.id}",
        f"/services/{mobile.id}/usage",
        f"/services/{mobile.id}/calls",
        f"/api/v1/services/{mobile.id}/usage",
    ):
        assert bob.get(path).status_code == 404, path
    assert bob.post(f"/services/{mobile.id}/cancel", form={"confirm": "true"}).status_code == 404
    assert Service.get_by_id(mobile.id).status == "active"
