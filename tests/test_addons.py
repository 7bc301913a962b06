"""Add-ons (ADD-1, ADD-2): the catalogue, ordering with a review, background provisioning with a
status the customer sees, refunds when provisioning fails, recurring charges, removal.

Runs on SQLite and PostgreSQL with the sandbox provider and a real dramatiq worker (run_tasks).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
import time_machine

from billing_helpers import customer, sandbox_card, staff
from engine import hookimpl
from engine.models import AuditEvent
from engine.testing import PrincipalHeader, as_user, problem, run_tasks
from plugins.addons import service as rules
from plugins.addons.models import ServiceAddon
from plugins.billing.models import Invoice, Payment, Transaction
from plugins.email.models import EmailDelivery
from plugins.sandbox.models import SandboxCharge
from topups_helpers import addon_catalogue, api_for, service_of


class AcmeProvisioner:
    """A partner's provisioner: answers only for its own id, "pending" once, then done."""

    def __init__(self):
        self.calls = []

    @hookimpl
    def provision_addon(self, app, service, addon, action):
        if addon.provisioner != "acme-sim":
            return None
        self.calls.append((service.id, addon.id, action))
        if len(self.calls) == 1:
            return {"status": "pending"}
        return {"status": "active", "reference": f"acme-{addon.id}", "detail": "SIM 8944 0001"}


@pytest.fixture
def acme():
    return AcmeProvisioner()


@pytest.fixture
def app(make_app, acme):
    return make_app(
        plugins=[("test-auth", PrincipalHeader()), ("acme", acme)],
        addons={"static_ip_pool": "203.0.113.7/32"},
    )


@pytest.fixture
def world(app):
    """Alice's broadband line, a saved card and the demo add-on catalogue."""
    c, user = customer("alice")
    return {
        "customer": c,
        "user": user,
        "service": service_of(c, "broadband"),
        "card": sandbox_card(app, c.id),
        "products": addon_catalogue(app),
        "api": api_for(app, user),
    }


def order(world, code, key=None, service=None, api=None, **body):
    product = world["products"][code]
    service = service or world["service"]
    headers = {"Idempotency-Key": key} if key else {}
    return (api or world["api"]).post(
        f"/api/v1/services/{service.id}/addons",
        json={"product_id": product.id, **body},
        headers=headers,
    )


def charges_of(addon) -> list[Transaction]:
    return list(
        Transaction.select()
        .where(Transaction.reference.startswith(f"addon:{addon.id}:"))
        .order_by(Transaction.id)
    )


# -- the catalogue (ADD-1) ----------------------------------------------------------------------


@pytest.mark.spec("ADD-1")
def test_each_service_type_has_its_own_add_ons(app, world):
    api, c = world["api"], world["customer"]
    offered = {
        s: {
            p["category"]
            for p in api.get(f"/api/v1/services/{service_of(c, s).id}/addons").json["available"]
        }
        for s in ("mobile", "broadband", "iptv")
    }
    assert offered["broadband"] == {"static_ip", "speed_boost", "hardware"}
    assert offered["iptv"] == {"premium_content", "hardware"}
    assert {"roaming", "premium_content", "speed_boost"} <= offered["mobile"]
    listed = api.get(f"/api/v1/services/{world['service'].id}/addons").json
    static = next(p for p in listed["available"] if p["category"] == "static_ip")
    assert static["one_off_price"] == {"amount": 1000, "currency": "GBP"}
    assert static["recurring_price"]["amount"] == 500 and listed["items"] == []


@pytest.mark.spec("ADD-2")
def test_review_shows_one_off_and_recurring_cost(app, world):
    product = world["products"]["broadband-router-wifi6"]
    r = world["api"].get(
        f"/api/v1/services/{world['service'].id}/addons/review", params={"product_id": product.id}
    )
    assert r.status_code == 200, r.text
    assert r.json["one_off"]["amount"] == 2500 and r.json["recurring"]["amount"] == 300
    assert r.json["pay_now"] is True and r.json["removable"] is False
    assert ServiceAddon.select().count() == 0


# -- ordering and provisioning (ADD-2) -------------------------------------------------------------


@pytest.mark.spec("ADD-2", "BILL-4")
def test_a_free_to_start_add_on_is_provisioned_in_the_background_then_charged_each_period(
    app, world
):
    r = order(world, "broadband-boost-900")
    assert r.status_code == 201, r.text
    assert r.json["addon"]["status"] == "pending" and r.json["payment"] is None
    assert SandboxCharge.select().count() == 0
    addon_id = r.json["addon"]["id"]
    path = f"/api/v1/services/{world['service'].id}/addons/{addon_id}"
    assert world["api"].get(path).json["status"] == "pending"
    run_tasks(app)
    shown = world["api"].get(path).json
    assert shown["status"] == "active" and shown["activated_at"]
    addon = ServiceAddon.get_by_id(addon_id)
    [first] = charges_of(addon)
    assert first.amount + first.tax == 1000 and first.invoice_id is None  # on the next bill
    assert first.service_id == world["service"].id
    assert addon.next_charge_at - addon.activated_at == timedelta(days=30)
    assert EmailDelivery.select().where(EmailDelivery.kind == "addon_active").count() == 1
    # Each period becomes one transaction, however often the job runs.
    later = datetime.now(timezone.utc) + timedelta(days=31)
    with time_machine.travel(later):
        assert rules.charge_due(app) == 1
        assert rules.charge_due(app) == 0
    with time_machine.travel(later + timedelta(days=60)):  # the scheduler was down: catch up
        app.tasks.actors["plugins.addons.tasks.charge_recurring"].send()
        run_tasks(app)
    assert [t.amount + t.tax for t in charges_of(addon)] == [1000] * 4
    assert len({t.description for t in charges_of(addon)}) == 4


@pytest.mark.spec("ADD-2", "BILL-2")
def test_a_one_off_price_is_paid_first_then_the_add_on_is_set_up(app, world):
    r = order(world, "broadband-router-wifi6", str(uuid.uuid4()))
    assert r.status_code == 201, r.text
    assert r.json["payment"]["status"] == "succeeded" and r.json["addon"]["status"] == "pending"
    receipt = Invoice.get_by_id(r.json["invoice"]["id"])
    assert receipt.status == "paid" and receipt.total == 2500
    run_tasks(app)
    addon = ServiceAddon.get_by_id(r.json["addon"]["id"])
    assert addon.status == "active"
    assert [t.amount + t.tax for t in charges_of(addon)] == [300]
    # Equipment is not removable online: the customer is told to call.
    path = f"/api/v1/services/{world['service'].id}/addons/{addon.id}"
    assert problem(world["api"].delete(path))["type"] == "/problems/addon-not-removable"


def assert_nothing_owed_for_the_failed_addon(bob, bob_api, payment):
    """ADD-3: charge +10.00, payment -10.00, refund +10.00 and the charge's reversal -10.00:
    the ledger nets to zero, once, and all of it sits on the receipt (no later invoice)."""
    rows = list(Transaction.select().where(Transaction.customer == bob.id))
    assert sorted(t.kind for t in rows) == ["charge", "credit", "payment", "refund"]
    assert sum(t.total for t in rows) == 0
    assert {t.invoice_id for t in rows} == {payment.invoice_id}
    [credit] = [t for t in rows if t.kind == "credit"]
    [charge] = [t for t in rows if t.kind == "charge"]
    assert (credit.amount, credit.tax) == (-charge.amount, -charge.tax)
    listed = bob_api.get("/api/v1/transactions").json["items"]
    assert sum(t["amount"]["amount"] for t in listed) == 0


@pytest.mark.spec("ADD-2", "ADD-3")
def test_a_provisioning_failure_refunds_the_one_off_charge(app, world):
    first = order(world, "broadband-static-ip")
    run_tasks(app)
    mine = ServiceAddon.get_by_id(first.json["addon"]["id"])
    assert mine.status == "active" and mine.detail == "203.0.113.7"
    # The pool (one address) is used up: the next customer's static IP cannot be set up.
    bob, bob_user = customer("bob")
    sandbox_card(app, bob.id)
    bobs = service_of(bob, "broadband")
    bob_api = api_for(app, bob_user)
    r = order(world, "broadband-static-ip", service=bobs, api=bob_api)
    assert r.status_code == 201 and r.json["payment"]["status"] == "succeeded"
    run_tasks(app)
    failed = ServiceAddon.get_by_id(r.json["addon"]["id"])
    assert failed.status == "failed" and "No static IP address" in failed.failure_message
    payment = Payment.get_by_id(failed.payment_id)
    assert payment.refunded_amount == 1000
    assert SandboxCharge.get(SandboxCharge.ref == payment.provider_ref).refunded == 1000
    assert (
        Transaction.get((Transaction.customer == bob.id) & (Transaction.kind == "refund")).amount
        == 1000
    )
    assert charges_of(failed) == []  # never active: no recurring charge
    shown = bob_api.get(f"/api/v1/services/{bobs.id}/addons/{failed.id}").json
    assert shown["status"] == "failed" and shown["failure_message"]
    assert EmailDelivery.select().where(EmailDelivery.kind == "addon_failed").count() == 1
    alerts = bob_api.get("/api/v1/alerts").json["items"]
    assert any(a["id"] == f"addon-failed-{failed.id}" for a in alerts)
    run_tasks(app)  # a redelivered refund gives back nothing more
    assert Payment.get_by_id(payment.id).refunded_amount == 1000
    assert_nothing_owed_for_the_failed_addon(bob, bob_api, payment)
    # Removing the first one frees the address for the next order.
    world["api"].delete(f"/api/v1/services/{world['service'].id}/addons/{mine.id}")
    run_tasks(app)
    again = order(world, "broadband-static-ip", service=bobs, api=bob_api)
    run_tasks(app)
    assert ServiceAddon.get_by_id(again.json["addon"]["id"]).detail == "203.0.113.7"


@pytest.mark.spec("ADD-2")
def test_a_declined_one_off_payment_orders_nothing(app, world):
    card = sandbox_card(app, world["customer"].id, number="4000000000009995", default=False)
    body = problem(order(world, "broadband-static-ip", payment_method_id=card.id))
    assert body["status"] == 402
    addon = ServiceAddon.get()
    assert addon.status == "canceled" and "insufficient funds" in addon.failure_message
    run_tasks(app)
    assert ServiceAddon.get().status == "canceled"
    assert order(world, "broadband-static-ip").status_code == 201  # another card works


@pytest.mark.spec("ADD-2", "BILL-2")
def test_three_d_secure_then_provisioning(app, world):
    card = sandbox_card(app, world["customer"].id, number="4000002500003155", default=False)
    r = order(world, "broadband-static-ip", payment_method_id=card.id)
    assert r.status_code == 202 and r.json["addon"]["status"] == "awaiting_payment"
    action = r.json["next_action"]
    ref = Payment.get_by_id(r.json["payment"]["id"]).provider_ref
    world["api"].post(
        f"/api/v1/sandbox/charges/{ref}/authenticate",
        json={"client_secret": action["client_secret"], "success": True},
    )
    assert world["api"].post(action["complete_url"]).status_code == 200
    assert ServiceAddon.get().status == "pending"
    run_tasks(app)
    assert ServiceAddon.get().status == "active"


def test_one_of_each_add_on_at_a_time_and_a_key_orders_once(app, world):
    key = str(uuid.uuid4())
    first = order(world, "broadband-static-ip", key)
    again = order(world, "broadband-static-ip", key)
    assert first.status_code == again.status_code == 201 and again.json == first.json
    assert problem(order(world, "broadband-static-ip"))["type"] == "/problems/addon-exists"
    assert ServiceAddon.select().count() == 1 and SandboxCharge.select().count() == 1


@pytest.mark.spec("ADD-2", "LIM-3")
def test_removal_stops_the_charges(app, world):
    r = order(world, "broadband-boost-900")
    run_tasks(app)
    path = f"/api/v1/services/{world['service'].id}/addons/{r.json['addon']['id']}"
    removing = world["api"].delete(path)
    assert removing.status_code == 202 and removing.json["status"] == "removing"
    assert problem(world["api"].delete(path))["type"] == "/problems/addon-not-active"
    run_tasks(app)
    addon = ServiceAddon.get()
    assert addon.status == "removed" and addon.removed_at and addon.next_charge_at is None
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(days=40)):
        assert rules.charge_due(app) == 0
    assert len(charges_of(addon)) == 1
    assert EmailDelivery.select().where(EmailDelivery.kind == "addon_removed").count() == 1
    assert {"addon.ordered", "addon.active", "addon.remove", "addon.removed"} <= {
        e.action for e in AuditEvent.select()
    }
    assert order(world, "broadband-boost-900").status_code == 201  # may be added again


def test_another_customers_add_ons_are_404(app, world):
    r = order(world, "broadband-boost-900")
    bob, bob_user = customer("bob")
    bob_api = api_for(app, bob_user)
    path = f"/api/v1/services/{world['service'].id}/addons"
    assert bob_api.get(path).status_code == 404
    assert bob_api.get(f"{path}/{r.json['addon']['id']}").status_code == 404
    assert bob_api.delete(f"{path}/{r.json['addon']['id']}").status_code == 404
    assert order(world, "broadband-boost-900", api=bob_api).status_code == 404
    bobs = service_of(bob, "broadband")
    # An add-on of Alice's named under Bob's own service is not found either.
    assert (
        bob_api.get(f"/api/v1/services/{bobs.id}/addons/{r.json['addon']['id']}").status_code == 404
    )


def test_hook_provision_addon(app, world, acme):
    admin = as_user(api_for(app, world["user"]), staff("catalogue", name="cat"))
    created = admin.post(
        "/api/v1/staff/addon-products",
        json={
            "code": "broadband-acme-sim",
            "service_type": "broadband",
            "category": "hardware",
            "name": "Backup 4G SIM",
            "recurring_price": 200,
            "provisioner": "acme-sim",
        },
    )
    assert created.status_code == 201, created.text
    r = world["api"].post(
        f"/api/v1/services/{world['service'].id}/addons", json={"product_id": created.json["id"]}
    )
    addon_id = r.json["addon"]["id"]
    rules.provision(app, addon_id)  # the partner says "pending": asked again later
    assert ServiceAddon.get_by_id(addon_id).status == "pending"
    rules.provision(app, addon_id)
    addon = ServiceAddon.get_by_id(addon_id)
    assert (addon.status, addon.reference, addon.detail) == (
        "active",
        f"acme-{addon_id}",
        "SIM 8944 0001",
    )
    assert acme.calls == [(world["service"].id, addon_id, "activate")] * 2
    rules.provision(app, addon_id)  # settled: a late delivery changes nothing
    assert len(acme.calls) == 2
    # A provisioner nobody implements fails (nothing was charged for it: nothing to refund).
    admin.patch(
        f"/api/v1/staff/addon-products/{created.json['id']}", json={"provisioner": "nobody"}
    )
    world["api"].delete(f"/api/v1/services/{world['service'].id}/addons/{addon_id}")
    rules.provision(app, addon_id)  # removal goes to the add-on's own provisioner
    assert ServiceAddon.get_by_id(addon_id).status == "removed"
    r = world["api"].post(
        f"/api/v1/services/{world['service'].id}/addons", json={"product_id": created.json["id"]}
    )
    rules.provision(app, r.json["addon"]["id"])
    assert ServiceAddon.get_by_id(r.json["addon"]["id"]).status == "failed"


@pytest.mark.spec("ADD-1")
def test_staff_edit_the_add_on_catalogue(app, world):
    admin = as_user(api_for(app, world["user"]), staff("catalogue", name="cat"))
    assert problem(
        admin.post(
            "/api/v1/staff/addon-products",
            json={"code": "Bad Code", "service_type": "tv", "category": "magic", "name": ""},
        )
    )["errors"].keys() >= {"code", "service_type", "category", "name"}
    product = world["products"]["broadband-boost-900"]
    path = f"/api/v1/staff/addon-products/{product.id}"
    assert (
        admin.patch(path, json={"recurring_price": 1200}).json["recurring_price"]["amount"] == 1200
    )
    assert admin.delete(path).json["active"] is False
    listed = world["api"].get(f"/api/v1/services/{world['service'].id}/addons").json
    assert "broadband-boost-900" not in {p["code"] for p in listed["available"]}
    items = admin.get("/api/v1/staff/addon-products", params={"service_type": "broadband"}).json
    assert {p["code"] for p in items["items"]} >= {"broadband-boost-900", "broadband-static-ip"}
    assert (
        as_user(api_for(app, world["user"]), staff("billing", name="b"))
        .get("/api/v1/staff/addon-products")
        .status_code
        == 403
    )


class CrashOnce:
    """Dies after the provider charged, before billing's commit (once)."""

    def __init__(self):
        self.armed = True

    @hookimpl(tryfirst=True)
    def payment_succeeded(self, app, payment):
        if self.armed:
            self.armed = False
            raise RuntimeError("the process died after the charge, before the commit")


@pytest.mark.spec("ADD-2")
def test_a_retry_after_a_crash_settles_the_first_order(make_app):
    app = make_app(plugins=[("test-auth", PrincipalHeader()), ("crash", CrashOnce())])
    c, user = customer("alice")
    sandbox_card(app, c.id)
    world = {
        "service": service_of(c, "broadband"),
        "products": addon_catalogue(app),
        "api": api_for(app, user),
    }
    assert problem(order(world, "broadband-static-ip", "order-1"))["status"] == 500
    assert ServiceAddon.get().status == "awaiting_payment"
    again = order(world, "broadband-static-ip", "order-1")
    assert again.status_code == 201, again.text
    assert (
        again.json["addon"]["status"] == "pending"
        and again.json["payment"]["status"] == "succeeded"
    )
    assert ServiceAddon.select().count() == 1 and SandboxCharge.select().count() == 1
    run_tasks(app)
    assert ServiceAddon.get().status == "active"
    other = problem(order(world, "broadband-boost-900", "order-1"))
    assert other["type"] == "/problems/idempotency-key-reused"
