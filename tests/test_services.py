"""The services section (SVC-1..4, MOB-2), renewal and expiry, cards and alerts."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from engine import hookimpl
from engine.db import utcnow
from engine.models import AuditEvent, Service
from engine.registry import Action
from engine.testing import Client, PrincipalHeader, as_user, problem
from plugins.services.service import run_renewals
from plugins.usage.models import Bucket, LedgerEntry
from plugins.usage.rating import rate
from usage_helpers import GB, bucket, customer_user, event, product, service_for

AUTH = ("test-auth", PrincipalHeader())
ESIM = "LPA:1$smdp.example.com$K2-8D1S2-3X7F"


@pytest.fixture
def site(make_app):
    """An app with self-service cancellation on, a customer with two services, and a stranger."""
    app = make_app(plugins=[AUTH], services={"allow_cancel": True})
    user = customer_user("Alice")
    mobile = service_for(
        user,
        product(allow_cancel=True, allow_modify=True),
        identifier="+447700900123",
        esim_activation_code=ESIM,
    )
    tv = service_for(
        user,
        product(name="TV Plus", service_type="iptv"),
        service_type="iptv",
        name="TV - 1 High Street",
        renews_at=utcnow() + timedelta(days=3),
        auto_renew=False,
    )
    stranger = customer_user("Mallory")
    return app, as_user(Client(app), user), mobile, tv, as_user(Client(app), stranger)


@pytest.mark.spec("SVC-1", "SVC-2")
def test_list_shows_every_field_of_each_service(site):
    app, alice, mobile, tv, _ = site
    body = alice.get("/api/v1/services").json
    assert body["next"] is None
    items = {s["id"]: s for s in body["items"]}
    assert set(items) == {mobile.id, tv.id}
    m = items[mobile.id]
    assert m["name"].startswith("Mobile - ") and m["product"]["name"] == "Mobile 10GB"
    assert m["status"] == "active" and m["indicator"] == "active"
    assert m["monthly_fee"] == {"amount": 1000, "currency": "GBP"}
    assert m["auto_renew"] is True and m["created_at"] and m["renews_at"]
    assert m["expires_at"] is None
    assert items[tv.id]["indicator"] == "expiring"  # ends in 3 days


@pytest.mark.spec("SVC-1")
def test_list_filters_and_pages(site):
    app, alice, mobile, tv, _ = site
    assert [
        s["id"] for s in alice.get("/api/v1/services", params={"type": "iptv"}).json["items"]
    ] == [tv.id]
    first = alice.get("/api/v1/services", params={"limit": 1}).json
    assert len(first["items"]) == 1 and first["next"]
    second = alice.get("/api/v1/services", params={"limit": 1, "cursor": first["next"]}).json
    assert [first["items"][0]["id"], second["items"][0]["id"]] == [mobile.id, tv.id]  # oldest first
    assert problem(alice.get("/api/v1/services", params={"status": "happy"}))["errors"]["status"]


@pytest.mark.spec("SVC-2")
def test_indicator_follows_the_dates(site):
    app, alice, mobile, tv, _ = site
    assert alice.get(f"/api/v1/services/{mobile.id}").json["indicator"] == "active"
    with time_machine.travel(utcnow() + timedelta(days=14)):
        assert alice.get(f"/api/v1/services/{mobile.id}").json["indicator"] == "expiring"
    Service.update(status="suspended").where(Service.id == mobile.id).execute()
    assert alice.get(f"/api/v1/services/{mobile.id}").json["indicator"] == "suspended"
    Service.update(expires_at=utcnow() - timedelta(hours=1)).where(
        Service.id == mobile.id
    ).execute()
    assert alice.get(f"/api/v1/services/{mobile.id}").json["indicator"] == "expired"


@pytest.mark.spec("LIM-2")
def test_another_customers_service_is_not_found_by_any_route(site):
    app, alice, mobile, tv, mallory = site
    for path in (
        f"/api/v1/services/{mobile.id}",
        f"/services/{mobile.id}",
        f"/services/{mobile.id}/cancel",
        f"/services/{mobile.id}/modify",
        f"/api/v1/services/{mobile.id}/usage",
        f"/api/v1/services/{mobile.id}/balances",
        f"/services/{mobile.id}/usage",
    ):
        assert mallory.get(path).status_code == 404, path
    assert mallory.post(f"/api/v1/services/{mobile.id}/cancel", json={}).status_code == 404
    assert (
        mallory.patch(f"/api/v1/services/{mobile.id}", json={"auto_renew": False}).status_code
        == 404
    )
    assert (
        mallory.post(f"/services/{mobile.id}/cancel", form={"confirm": "true"}).status_code == 404
    )
    assert Service.get_by_id(mobile.id).status == "active"
    assert mallory.get("/api/v1/services").json["items"] == []


@pytest.mark.spec("SVC-3")
def test_actions_come_from_the_enabled_plugins(make_app):
    class TopUps:
        @hookimpl
        def service_actions(self, app, ctx, service):
            return [Action("topup", "Top up", f"/services/{service.id}/topup", order=20)]

    app = make_app(plugins=[AUTH, ("topups-test", TopUps())])
    user = customer_user()
    service = service_for(user, product(allow_modify=True))
    actions = as_user(Client(app), user).get(f"/api/v1/services/{service.id}").json["actions"]
    assert [(a["id"], a["plugin"]) for a in actions] == [
        ("usage", "usage"),
        ("topup", "topups-test"),
        ("modify", "services"),
        ("details", "services"),
    ]
    page = as_user(Client(app), user).get("/services").text
    assert f'href="/services/{service.id}/topup"' in page

    bare = make_app(plugins=[AUTH], disabled=["usage", "topups"])  # top-ups need usage
    user = customer_user()
    service = service_for(user)
    actions = as_user(Client(bare), user).get(f"/api/v1/services/{service.id}").json["actions"]
    assert [a["id"] for a in actions] == ["details"]  # no usage plugin: no "View usage"
    assert (
        as_user(Client(bare), user).get(f"/api/v1/services/{service.id}/usage").status_code == 404
    )


@pytest.mark.spec("SVC-4", "LIM-1")
def test_cancel_is_refused_unless_the_operator_enables_it(make_app):
    # allow_cancel defaults to off
    app = make_app(plugins=[AUTH], support={"phone": "+44 20 7946 0000"})
    user = customer_user()
    service = service_for(user, product(allow_cancel=True))
    client = as_user(Client(app), user)
    body = problem(client.post(f"/api/v1/services/{service.id}/cancel", json={}))
    assert body["status"] == 403 and body["type"] == "/problems/cancel-not-allowed"
    assert body["support"]["tel"] == "tel:+442079460000"
    assert "contact support: +44 20 7946 0000." in body["detail"]
    assert client.get(f"/api/v1/services/{service.id}").json["cancellable"] is False
    page = client.get(f"/services/{service.id}").text
    assert "cannot be cancelled online" in page and 'href="tel:+442079460000"' in page
    assert Service.get_by_id(service.id).status == "active"


@pytest.mark.spec("SVC-4")
def test_cancel_needs_the_product_to_allow_it_too(site):
    app, alice, mobile, tv, _ = site
    assert problem(alice.post(f"/api/v1/services/{tv.id}/cancel", json={}))["status"] == 403


@pytest.mark.spec("SVC-4", "ACCT-5")
def test_cancel_through_the_api(site):
    app, alice, mobile, tv, _ = site
    result = alice.post(f"/api/v1/services/{mobile.id}/cancel", json={"reason": "Moving abroad"})
    assert result.status_code == 200
    assert result.json["status"] == "cancelled" and result.json["auto_renew"] is False
    audit = AuditEvent.get(AuditEvent.action == "service.cancelled")
    assert audit.target == f"service:{mobile.id}" and audit.data["reason"] == "Moving abroad"
    again = problem(alice.post(f"/api/v1/services/{mobile.id}/cancel", json={}))
    assert again["status"] == 409
    assert problem(alice.post(f"/api/v1/services/{mobile.id}/cancel", json={"reason": "x" * 501}))[
        "errors"
    ]["reason"]


@pytest.mark.spec("SVC-1", "SVC-2")
def test_ended_services_show_their_end_and_no_live_balances_or_renewal(site):
    app, alice, mobile, tv, _ = site
    bucket(mobile, remaining=GB // 100)  # 0.1% left: "Low" while the line is live
    assert "Low" in alice.get(f"/services/{mobile.id}/usage").text
    alice.post(f"/api/v1/services/{mobile.id}/cancel", json={})
    with time_machine.travel(utcnow() + timedelta(days=4)):  # the TV service is not renewed
        run_renewals(app)
        for ended, status in ((mobile, "cancelled"), (tv, "expired")):
            api = alice.get(f"/api/v1/services/{ended.id}").json
            assert api["status"] == status and api["renews_at"] is None and api["ended_at"]
            page = alice.get(f"/services/{ended.id}").text
            assert "Ended" in page and "Renewal date" not in page
            assert "Expiry date" not in page and "None" not in page
            usage = alice.get(f"/api/v1/services/{ended.id}/usage").json
            assert usage["ended"] and usage["balances"] == [] and usage["renews_at"] is None
            html = alice.get(f"/services/{ended.id}/usage").text
            assert "Low" not in html and "has ended" in html
        listing = alice.get("/services").text
        assert listing.count("Ended") == 2 and "Renews" not in listing


@pytest.mark.spec("SVC-4")
def test_cancel_page_asks_for_confirmation(site):
    app, alice, mobile, tv, _ = site
    page = alice.get(f"/services/{mobile.id}/cancel")
    assert page.status_code == 200 and 'name="confirm"' in page.text
    refused = alice.post(f"/services/{mobile.id}/cancel", form={"reason": "too dear"})
    assert refused.status_code == 422 and "Tick the box to confirm" in refused.text
    assert Service.get_by_id(mobile.id).status == "active"
    done = alice.post(f"/services/{mobile.id}/cancel", form={"confirm": "true"})
    assert done.status_code == 303 and done.headers["location"].endswith("?done=cancelled")
    assert Service.get_by_id(mobile.id).status == "cancelled"
    assert "has been cancelled" in alice.get(done.headers["location"]).text


def test_cancel_form_needs_the_csrf_token(site):
    app, alice, mobile, tv, _ = site
    result = alice.post(f"/services/{mobile.id}/cancel", form={"confirm": "true"}, csrf=False)
    assert result.status_code == 403
    assert Service.get_by_id(mobile.id).status == "active"


@pytest.mark.spec("SVC-3", "LIM-3")
def test_auto_renew_can_be_switched_only_where_the_product_allows(site):
    app, alice, mobile, tv, _ = site
    result = alice.patch(f"/api/v1/services/{mobile.id}", json={"auto_renew": False})
    assert result.status_code == 200 and result.json["auto_renew"] is False
    assert AuditEvent.get(AuditEvent.action == "service.auto_renew_changed").data == {
        "name": mobile.name,
        "auto_renew": False,
    }
    assert (
        problem(alice.patch(f"/api/v1/services/{tv.id}", json={"auto_renew": True}))["status"]
        == 403
    )
    assert problem(alice.patch(f"/api/v1/services/{mobile.id}", json={}))["errors"]["auto_renew"]
    page = alice.post(f"/services/{mobile.id}/modify", form={"auto_renew": "true"})
    assert page.status_code == 303 and Service.get_by_id(mobile.id).auto_renew is True
    bad = alice.post(f"/services/{mobile.id}/modify", form={"auto_renew": "maybe"})
    assert bad.status_code == 422 and "Not a valid boolean" in bad.text


@pytest.mark.spec("MOB-2")
def test_esim_qr_code_on_the_service_page(site):
    app, alice, mobile, tv, _ = site
    page = alice.get(f"/services/{mobile.id}").text
    assert 'class="esim-qr" src="data:image/svg+xml' in page
    assert "smdp.example.com" in page and "K2-8D1S2-3X7F" in page
    esim = alice.get(f"/api/v1/services/{mobile.id}").json["esim"]
    assert esim == {
        "activation_code": ESIM,
        "smdp_address": "smdp.example.com",
        "matching_id": "K2-8D1S2-3X7F",
    }
    assert "esim-qr" not in alice.get(f"/services/{tv.id}").text
    assert alice.get(f"/api/v1/services/{tv.id}").json["esim"] is None


@pytest.mark.spec("SVC-1", "SVC-2")
def test_services_page_shows_cards_with_status_lights(site):
    app, alice, mobile, tv, _ = site
    Service.update(status="suspended").where(Service.id == mobile.id).execute()
    page = alice.get("/services").text
    assert mobile.name in page and "TV - 1 High Street" in page
    assert 'data-indicator="suspended"' in page and 'data-indicator="expiring"' in page
    assert "£10.00" in page and 'aria-current="page"' in page


# -- renewal and expiry ---------------------------------------------------------------------


class StatusRecorder:
    def __init__(self):
        self.changes, self.renewals = [], []

    @hookimpl
    def service_status_changed(self, app, service, old_status, new_status, reason):
        self.changes.append((service.id, old_status, new_status, reason))

    @hookimpl
    def service_renewed(self, app, service, previous_period_start):
        self.renewals.append((service.id, previous_period_start, service.period_start))


@pytest.mark.spec("USE-2")
def test_hook_service_renewed_refills_the_base_plan(make_app):
    recorder = StatusRecorder()
    app = make_app(plugins=[("recorder", recorder)])
    service = service_for(customer_user())
    plan = bucket(service, amount=10 * GB, renewable=True)
    topup = bucket(service, amount=GB, weight=20)
    rate(app, [event(service, 3 * GB)])
    old_start, due = service.period_start, service.renews_at
    assert run_renewals(app) == {"renewed": 0, "expired": 0}
    with time_machine.travel(due + timedelta(minutes=5)):
        assert run_renewals(app) == {"renewed": 1, "expired": 0}
        assert run_renewals(app) == {"renewed": 0, "expired": 0}  # once per due date
    renewed = Service.get_by_id(service.id)
    assert renewed.period_start == due and renewed.renews_at == due + timedelta(days=30)
    assert recorder.renewals == [(service.id, old_start, due)]
    assert Bucket.get_by_id(plan.id).remaining == 10 * GB
    assert Bucket.get_by_id(topup.id).remaining == 0  # top-ups are not refilled
    entry = LedgerEntry.get(LedgerEntry.kind == "renewal")
    assert entry.bucket_id == plan.id and entry.delta == 2 * GB
    total = sum(e.delta for e in LedgerEntry.select().where(LedgerEntry.bucket == plan.id))
    assert Bucket.get_by_id(plan.id).remaining == 10 * GB + total


def test_renewal_catches_up_missed_periods_in_one_step(app):
    service = service_for(customer_user())
    due = service.renews_at
    with time_machine.travel(due + timedelta(days=65)):
        run_renewals(app)
    assert Service.get_by_id(service.id).renews_at == due + timedelta(days=90)


@pytest.mark.spec("SVC-2")
def test_hook_service_status_changed_when_services_end(make_app):
    recorder = StatusRecorder()
    app = make_app(plugins=[("recorder", recorder)])
    user = customer_user()
    no_renew = service_for(user, auto_renew=False)
    ending = service_for(user, expires_at=utcnow() + timedelta(days=2))
    suspended = service_for(user, status="suspended")
    renewing = service_for(user)
    with time_machine.travel(utcnow() + timedelta(days=25)):
        result = run_renewals(app)
    assert result == {"renewed": 1, "expired": 2}  # the suspended one does not renew
    assert Service.get_by_id(renewing.id).status == "active"
    assert Service.get_by_id(no_renew.id).status == "expired"
    assert Service.get_by_id(ending.id).status == "expired"
    assert Service.get_by_id(suspended.id).status == "suspended"
    assert sorted(c[0] for c in recorder.changes) == sorted([no_renew.id, ending.id])
    assert {c[2] for c in recorder.changes} == {"expired"}


def test_renewal_task_is_periodic(app):
    actor = app.tasks.actors["plugins.services.tasks.renew_services"]
    assert "periodic" in actor.options


# -- dashboard and alerts ----------------------------------------------------------------------


@pytest.mark.spec("DASH-1")
def test_services_card_on_the_dashboard(site):
    app, alice, mobile, tv, mallory = site
    cards = {c["id"]: c for c in alice.get("/api/v1/dashboard").json["cards"]}
    assert cards["services"]["data"]["total"] == 2
    assert cards["services"]["data"]["counts"]["expiring"] == 1
    assert "services" not in {c["id"] for c in mallory.get("/api/v1/dashboard").json["cards"]}
    assert mobile.name in alice.get("/").text
    alice.post(f"/api/v1/services/{mobile.id}/cancel", json={})
    data = {c["id"]: c for c in alice.get("/api/v1/dashboard").json["cards"]}["services"]["data"]
    assert (
        data["total"] == len(data["items"]) == 1 and data["ended"] == 1
    )  # "1 service", one listed
    home = alice.get("/").text
    assert "1 service" in home and "1 ended" in home


@pytest.mark.spec("NOT-2")
def test_alerts_for_services_ending_soon_and_suspended(site):
    app, alice, mobile, tv, _ = site
    Service.update(status="suspended").where(Service.id == mobile.id).execute()
    alerts = {a["id"]: a for a in alice.get("/api/v1/alerts").json["items"]}
    assert alerts[f"service-ending-{tv.id}"]["level"] == "warning"
    assert "ends in 3 days" in alerts[f"service-ending-{tv.id}"]["message"]
    assert alerts[f"service-suspended-{mobile.id}"]["level"] == "danger"


@pytest.mark.spec("ACCT-1")
def test_demo_customers_are_customers_since_before_their_first_service(demo_app):
    from engine.models import Customer

    # Carol's Catering (C-100003, SUP-2: her second account) has no services in the demo.
    for customer in Customer.select().where(Customer.number != "C-100003"):
        first = min(s.created_at for s in Service.select().where(Service.customer == customer.id))
        assert customer.created_at < first - timedelta(days=7)  # not the moment of seeding


@pytest.mark.spec("USE-8", "DASH-1")
def test_usage_page_charts_only_what_applies_to_the_service(site):
    app, alice, mobile, tv, _ = site
    page = alice.get(f"/services/{tv.id}/usage").text
    assert "no metered usage" in page and "chart-figure" not in page  # a TV: no empty chart
    bucket(mobile)
    page = alice.get(f"/services/{mobile.id}/usage").text
    assert "chart-figure" in page and "?chart=data" in page and "?chart=voice" not in page
