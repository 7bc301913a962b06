"""SVC-3: a customer changes a service's plan among the compatible ones: upgrade now with a
prorated charge, downgrade at the next renewal (cancellable), the cost shown first."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import time_machine

from engine import hookimpl
from engine.models import AuditEvent, Contact, Service
from engine.testing import Client, PrincipalHeader, as_user, problem
from plugins.billing.models import Transaction
from plugins.services.service import run_renewals
from usage_helpers import customer_user, product, service_for

AUTH = ("test-auth", PrincipalHeader())
START = datetime(2026, 3, 1, tzinfo=timezone.utc)
RENEWS = datetime(2026, 3, 31, tzinfo=timezone.utc)  # a 30-day period
MID = datetime(2026, 3, 11, 12, tzinfo=timezone.utc)  # 19.5 days left: 19 whole days


class Events:
    def __init__(self):
        self.seen = []

    @hookimpl
    def event_emitted(self, app, event_type, data, customer_id):
        self.seen.append((event_type, data, customer_id))


@pytest.fixture
def site(make_app):
    """Alice (primary contact) with a 10.00 plan compatible with a dearer and a cheaper one."""
    events = Events()
    app = make_app(plugins=[AUTH, ("acme-events", events)])
    big = product(code="M50", external_id="M50", name="Mobile 50GB", monthly_fee=2500)
    small = product(code="M5", external_id="M5", name="Mobile 5GB", monthly_fee=600)
    product(code="M99", external_id="M99", name="Mobile 99GB", monthly_fee=9900)
    plan = product(
        code="M20",
        external_id="M20",
        allow_modify=True,
        compatible_plans=["M50", "M5", "GONE"],  # GONE: no such product, never offered
    )
    user = customer_user("Alice")
    Contact.update(is_primary=True).where(Contact.id == user.contact_id).execute()
    service = service_for(user, plan, period_start=START, renews_at=RENEWS, monthly_fee=1000)
    return app, as_user(Client(app), user), service, big, small, events


def api(service, tail="plan-change"):
    return f"/api/v1/services/{service.id}/{tail}"


@pytest.mark.spec("SVC-3")
def test_svc3_options_quote_the_prorated_cost_at_a_fixed_time(site):
    app, alice, service, big, small, events = site
    with time_machine.travel(MID, tick=False):
        body = alice.get(api(service, "plan-options")).json
        quote = alice.post(api(service), json={"plan": "M50"}).json
    options = {o["plan"]: o for o in body["items"]}
    assert list(options) == ["M50", "M5"] and body["pending_plan"] is None
    up, down = options["M50"], options["M5"]
    # 19 whole days left of 30 × (2500 - 1000) = 950
    assert up["kind"] == "upgrade" and up["days_left"] == 19 and up["period_days"] == 30
    assert up["charge_now"] == {"amount": 950, "currency": "GBP"}
    assert down["kind"] == "downgrade" and down["charge_now"]["amount"] == 0
    assert down["applies_at"].startswith("2026-03-31")
    assert quote == {**up, "done": None}  # a quote changes nothing
    assert Service.get_by_id(service.id).product_id == service.product_id
    assert not AuditEvent.select().where(AuditEvent.action.startswith("service.plan")).exists()
    assert events.seen == []


@pytest.mark.spec("SVC-3")
def test_svc3_proration_rounds_in_the_customers_favour(site):
    app, alice, service, big, small, events = site
    big.monthly_fee = 2001
    big.save()
    with time_machine.travel(MID, tick=False):
        quote = alice.post(api(service), json={"plan": "M50"}).json
    assert quote["charge_now"]["amount"] == 633  # 19 × 1001 / 30 = 633.97, rounded down


@pytest.mark.spec("SVC-3", "INT-6")
def test_svc3_upgrade_applies_now_charges_the_account_audits_and_emits(site):
    app, alice, service, big, small, events = site
    with time_machine.travel(MID, tick=False):
        done = alice.post(api(service), json={"plan": "M50", "confirm": True}).json
    assert done["done"] == "applied" and done["charge_now"]["amount"] == 950
    row = Service.get_by_id(service.id)
    assert (row.product_id, row.monthly_fee, row.pending_plan) == (big.id, 2500, None)
    [tx] = Transaction.select().where(Transaction.service == service.id)
    assert tx.kind == "charge" and tx.amount + tx.tax == 950 and tx.invoice_id is None
    assert "Mobile 50GB" in tx.description
    actions = [
        a.action
        for a in AuditEvent.select()
        .where(AuditEvent.action.startswith("service.plan"))
        .order_by(AuditEvent.id)
    ]
    assert actions == ["service.plan_change_requested", "service.plan_change_applied"]
    [(kind, data, customer_id)] = events.seen
    assert kind == "plan_change.requested" and customer_id == service.customer_id
    assert data["from_plan"] == "M20" and data["to_plan"] == "M50" and data["charge_now"] == 950
    assert data["kind"] == "upgrade"
    shown = alice.get(f"/api/v1/services/{service.id}").json
    assert shown["product"]["name"] == "Mobile 50GB" and shown["monthly_fee"]["amount"] == 2500


@pytest.mark.spec("SVC-3")
def test_svc3_downgrade_waits_for_the_renewal(site):
    app, alice, service, big, small, events = site
    with time_machine.travel(MID, tick=False):
        done = alice.post(api(service), json={"plan": "M5", "confirm": True}).json
        assert done["done"] == "scheduled"
        row = Service.get_by_id(service.id)
        assert row.product_id == service.product_id and row.pending_plan == "M5"
        assert alice.get(f"/api/v1/services/{service.id}").json["pending_plan"] == "M5"
        assert run_renewals(app) == {"renewed": 0, "expired": 0}
    assert not Transaction.select().where(Transaction.service == service.id).exists()
    assert events.seen[0][1]["kind"] == "downgrade"
    assert AuditEvent.get(AuditEvent.action == "service.plan_change_scheduled")
    with time_machine.travel(datetime(2026, 3, 31, 1, tzinfo=timezone.utc), tick=False):
        assert run_renewals(app)["renewed"] == 1
    row = Service.get_by_id(service.id)
    assert (row.product_id, row.monthly_fee, row.pending_plan) == (small.id, 600, None)
    applied = AuditEvent.get(AuditEvent.action == "service.plan_change_applied")
    assert applied.data == {"to_plan": "M5", "at_renewal": True}


@pytest.mark.spec("SVC-3")
def test_svc3_a_scheduled_downgrade_can_be_cancelled_before_the_renewal(site):
    app, alice, service, big, small, events = site
    with time_machine.travel(MID, tick=False):
        alice.post(api(service), json={"plan": "M5", "confirm": True})
        kept = alice.delete(api(service))
        assert kept.status_code == 200 and kept.json["pending_plan"] is None
        assert problem(alice.delete(api(service)))["status"] == 409
    assert AuditEvent.get(AuditEvent.action == "service.plan_change_cancelled")
    with time_machine.travel(datetime(2026, 3, 31, 1, tzinfo=timezone.utc), tick=False):
        assert run_renewals(app)["renewed"] == 1
    assert Service.get_by_id(service.id).product_id == service.product_id


@pytest.mark.spec("SVC-3", "ACCT-7")
def test_svc3_refusals(site):
    app, alice, service, big, small, events = site
    wrong = problem(alice.post(api(service), json={"plan": "M99", "confirm": True}))
    assert wrong["status"] == 422 and wrong["errors"]["plan"]
    assert problem(alice.post(api(service), json={"plan": "GONE"}))["status"] == 422
    assert problem(alice.post(api(service), json={}))["errors"]["plan"]
    member = customer_user("Bob")
    Contact.update(customer=service.customer_id).where(Contact.id == member.contact_id).execute()
    bob = as_user(Client(app), member)
    refused = problem(bob.post(api(service), json={"plan": "M50", "confirm": True}))
    assert refused["status"] == 403 and refused["type"].endswith("role-forbidden")
    Service.update(status="cancelled").where(Service.id == service.id).execute()
    ended = problem(alice.post(api(service), json={"plan": "M50", "confirm": True}))
    assert ended["status"] == 409 and ended["type"].endswith("service-ended")
    assert Service.get_by_id(service.id).product_id == service.product_id
    assert events.seen == []


@pytest.mark.spec("SVC-3")
def test_svc3_tenant_isolation(site):
    app, alice, service, big, small, events = site
    mallory = as_user(Client(app), customer_user("Mallory"))
    assert mallory.get(api(service, "plan-options")).status_code == 404
    assert mallory.post(api(service), json={"plan": "M50", "confirm": True}).status_code == 404
    assert mallory.delete(api(service)).status_code == 404
    assert mallory.get(f"/services/{service.id}/plan", params={"plan": "M50"}).status_code == 404
    assert mallory.post(f"/services/{service.id}/plan", form={"plan": "M50"}).status_code == 404
    assert Service.get_by_id(service.id).product_id == service.product_id


@pytest.mark.spec("SVC-3")
def test_svc3_portal_shows_the_cost_then_confirms(site):
    app, alice, service, big, small, events = site
    with time_machine.travel(MID, tick=False):
        page = alice.get(f"/services/{service.id}/modify").text
        assert "Mobile 50GB" in page and "Mobile 5GB" in page and "Mobile 99GB" not in page
        wrong = alice.get(f"/services/{service.id}/plan", params={"plan": "M99"})
        assert wrong.status_code == 422 and "cannot switch to that plan" in wrong.text
        quote = alice.get(f"/services/{service.id}/plan", params={"plan": "M50"})
        assert quote.status_code == 200 and "9.50" in quote.text
        assert Service.get_by_id(service.id).product_id == service.product_id
        done = alice.post(f"/services/{service.id}/plan", form={"plan": "M50"})
        assert done.status_code == 303 and done.headers["location"].endswith("done=applied")
    assert Service.get_by_id(service.id).product_id == big.id
    # Mobile 50GB does not allow changes in the portal: the page points to support
    assert alice.get(f"/services/{service.id}/plan", params={"plan": "M20"}).status_code == 403


@pytest.mark.spec("SVC-3")
def test_svc3_portal_schedules_and_keeps(site):
    app, alice, service, big, small, events = site
    with time_machine.travel(MID, tick=False):
        done = alice.post(f"/services/{service.id}/plan", form={"plan": "M5"})
        assert done.headers["location"].endswith("done=scheduled")
        page = alice.get(f"/services/{service.id}/modify").text
        assert "data-pending-plan" in page and "Mobile 5GB starts at the next renewal" in page
        kept = alice.post(f"/services/{service.id}/plan/cancel", form={})
        assert kept.status_code == 303 and kept.headers["location"].endswith("done=kept")
    assert Service.get_by_id(service.id).pending_plan is None


@pytest.mark.spec("SVC-3")
def test_svc3_routes_are_in_the_openapi_document(site):
    app, alice, service, big, small, events = site
    paths = alice.get("/api/v1/openapi.json").json["paths"]
    change = paths["/services/{service_id}/plan-change"]  # under /api/v1
    assert {"post", "delete"} <= set(change)
    assert "get" in paths["/services/{service_id}/plan-options"]
    assert "confirm" in json.dumps(change["post"])
