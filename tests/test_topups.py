"""Buying top-ups (TOP-1, TOP-2): the catalogue, the review, paying, crediting, money moving once.

Runs on SQLite and PostgreSQL (the ``app`` fixture) with the sandbox provider.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import time_machine

from billing_helpers import customer, sandbox_card, staff
from engine import hookimpl
from engine.db import utcnow
from engine.models import AuditEvent
from engine.testing import PrincipalHeader, as_user, problem, run_tasks
from plugins.billing import payments
from plugins.billing.models import Invoice, Payment, Transaction
from plugins.email.models import EmailDelivery
from plugins.sandbox.models import SandboxCharge
from plugins.topups.models import TopupProduct, TopupPurchase
from plugins.usage.models import Bucket
from topups_helpers import api_for, service_of, topup_catalogue
from usage_helpers import GB, bucket

NEEDS_3DS, DECLINES = "4000002500003155", "4000000000000341"


class Breakage:
    """A test plugin: crash after the charge (before the commit), or refuse credits."""

    def __init__(self):
        self.crash_once = False
        self.refuse_credit = False

    @hookimpl(tryfirst=True)
    def payment_succeeded(self, app, payment):
        if self.crash_once:
            self.crash_once = False
            raise RuntimeError("the process died after the charge, before the commit")

    @hookimpl(tryfirst=True)
    def credit_balance(self, app, service, credit):
        if self.refuse_credit:
            raise RuntimeError("the charging system is down")
        return None


@pytest.fixture
def breakage():
    return Breakage()


@pytest.fixture
def app(make_app, breakage):
    return make_app(plugins=[("test-auth", PrincipalHeader()), ("test-breakage", breakage)])


@pytest.fixture
def world(app):
    """Alice with a prepaid line, a saved card and the demo catalogue."""
    c, user = customer("alice")
    return {
        "customer": c,
        "user": user,
        "service": service_of(c, "prepaid"),
        "card": sandbox_card(app, c.id),
        "products": topup_catalogue(app),
        "api": api_for(app, user),
    }


def buy(world, code, key=None, **body):
    product = world["products"][code]
    headers = {"Idempotency-Key": key} if key else {}
    return world["api"].post(
        f"/api/v1/services/{world['service'].id}/topups",
        json={"product_id": product.id, **body},
        headers=headers,
    )


def buckets_of(service, kind=None):
    query = Bucket.select().where(Bucket.service == service.id)
    return list(query.where(Bucket.type == kind) if kind else query)


# -- the catalogue (TOP-2) --------------------------------------------------------------------


@pytest.mark.spec("TOP-2")
def test_each_service_type_gets_its_own_catalogue(app, world):
    items = world["api"].get(f"/api/v1/services/{world['service'].id}/topups").json["items"]
    data = [i["quantity"] for i in items if i["kind"] == "data"]
    assert data == [1 * GB, 5 * GB, 10 * GB, 20 * GB, 50 * GB]
    credit = [i for i in items if i["kind"] == "monetary"]
    assert [i["price"]["amount"] for i in credit if not i["custom"]] == [
        500,
        1000,
        2000,
        5000,
        10000,
    ]
    custom = next(i for i in credit if i["custom"])
    assert custom["min_amount"] == {"amount": 100, "currency": "GBP"}
    assert custom["max_amount"]["amount"] == 25000
    assert {i["kind"] for i in items} == {"data", "voice", "sms", "monetary"}
    assert all(i["weight"] == 20 for i in items)
    broadband = service_of(world["customer"], "broadband")
    theirs = world["api"].get(f"/api/v1/services/{broadband.id}/topups").json["items"]
    assert {i["code"] for i in theirs} == {"broadband-bb-100gb", "broadband-bb-500gb"}


def test_another_customers_service_and_purchases_are_404(app, world):
    other, other_user = customer("bob")
    theirs = service_of(other, "prepaid")
    api = world["api"]
    assert api.get(f"/api/v1/services/{theirs.id}/topups").status_code == 404
    r = api.post(
        f"/api/v1/services/{theirs.id}/topups",
        json={"product_id": world["products"]["prepaid-data-1gb"].id},
    )
    assert r.status_code == 404
    mine = buy(world, "prepaid-data-1gb").json["purchase"]["id"]
    bob = api_for(app, other_user)
    assert (
        bob.get(f"/api/v1/services/{world['service'].id}/topups/purchases/{mine}").status_code
        == 404
    )
    assert SandboxCharge.select().count() == 1


# -- the review ------------------------------------------------------------------------------------


@pytest.mark.spec("TOP-1", "USE-3")
def test_review_shows_price_what_is_added_expiry_and_the_bucket_order(app, world):
    service = world["service"]
    bucket(service, amount=2 * GB, weight=10, name="Bonus", expires_at=utcnow() + timedelta(3))
    bucket(service, amount=10 * GB, weight=30, name="Plan")
    product = world["products"]["prepaid-data-5gb"]
    r = world["api"].get(
        f"/api/v1/services/{service.id}/topups/review", params={"product_id": product.id}
    )
    assert r.status_code == 200, r.text
    review = r.json
    assert review["price"] == {"amount": 500, "currency": "GBP"}
    assert review["quantity"] == 5 * GB and review["unit"] == "bytes"
    expires = datetime.fromisoformat(review["expires_at"])
    assert timedelta(days=29, hours=23) < expires - utcnow() <= timedelta(days=30)
    assert [(b["name"], b["new"]) for b in review["order"]] == [
        ("Bonus", False),
        ("5 GB data", True),
        ("Plan", False),
    ]
    assert review["balance_after"] == {"remaining": 17 * GB, "unit": "bytes"}
    assert TopupPurchase.select().count() == 0 and Payment.select().count() == 0


@pytest.mark.spec("TOP-1")
def test_a_custom_amount_must_be_within_the_operators_bounds(app, world):
    service, api = world["service"], world["api"]
    custom = world["products"]["prepaid-credit-custom"]
    for amount in (None, 99, 25001, -5):
        body = problem(
            api.post(
                f"/api/v1/services/{service.id}/topups",
                json={"product_id": custom.id, "amount": amount},
            )
        )
        assert body["status"] == 422 and "amount" in body["errors"], amount
    body = problem(api.post(f"/api/v1/services/{service.id}/topups", json={"product_id": 999999}))
    assert "product_id" in body["errors"]
    assert TopupPurchase.select().count() == 0 and SandboxCharge.select().count() == 0
    r = api.post(
        f"/api/v1/services/{service.id}/topups", json={"product_id": custom.id, "amount": 1250}
    )
    assert r.status_code == 201, r.text
    assert r.json["purchase"]["price"]["amount"] == 1250
    [credit] = buckets_of(service, "monetary")
    assert credit.remaining == 1250 and credit.expires_at is None


# -- buying (TOP-1) ----------------------------------------------------------------------------------


@pytest.mark.spec("TOP-1", "BILL-4")
def test_buying_credits_the_balance_at_once_with_a_receipt_and_a_notice(app, world):
    service = world["service"]
    r = buy(world, "prepaid-data-5gb", str(uuid.uuid4()))
    assert r.status_code == 201, r.text
    purchase = r.json["purchase"]
    assert purchase["status"] == "credited" and r.json["payment"]["status"] == "succeeded"
    [added] = buckets_of(service, "data")
    assert (added.initial, added.remaining, added.weight, added.source) == (
        5 * GB,
        5 * GB,
        20,
        "topup",
    )
    assert added.reference == f"topup:{purchase['id']}"
    assert added.expires_at - utcnow() > timedelta(days=29)
    # The charge and the card payment both sit on a paid receipt: nothing owed later.
    receipt = Invoice.get_by_id(r.json["invoice"]["id"])
    assert receipt.status == "paid" and receipt.total == 500
    rows = {
        t.kind: t for t in Transaction.select().where(Transaction.customer == world["customer"].id)
    }
    assert rows["charge"].amount + rows["charge"].tax == 500
    assert rows["charge"].description.startswith("Top-up: 5 GB data")
    assert rows["payment"].amount == -500
    assert {t.invoice_id for t in rows.values()} == {receipt.id}
    assert EmailDelivery.select().where(EmailDelivery.kind == "topup_confirmed").count() == 1
    actions = {e.action for e in AuditEvent.select()}
    assert {"topup.purchase", "topup.credited", "payment.succeeded"} <= actions
    run_tasks(app)
    mails = [p.read_text() for p in (app.settings.data_path / "mail").glob("*.eml")]
    assert any("Top-up added: 5 GB data" in m for m in mails)


@pytest.mark.spec("TOP-1")
def test_a_declined_card_adds_nothing(app, world):
    card = sandbox_card(app, world["customer"].id, number=DECLINES, default=False)
    body = problem(buy(world, "prepaid-data-1gb", payment_method_id=card.id))
    assert body["status"] == 402 and body["type"] == "/problems/payment-failed"
    assert TopupPurchase.get().status == "failed"
    assert buckets_of(world["service"]) == []
    assert not Transaction.select().where(Transaction.kind == "charge").exists()


@pytest.mark.spec("TOP-1", "BILL-2")
def test_three_d_secure_then_credit_once(app, world):
    card = sandbox_card(app, world["customer"].id, number=NEEDS_3DS, default=False)
    r = buy(world, "prepaid-data-10gb", payment_method_id=card.id)
    assert r.status_code == 202 and r.json["purchase"]["status"] == "pending"
    assert buckets_of(world["service"]) == []
    action = r.json["next_action"]
    ref = Payment.get_by_id(r.json["payment"]["id"]).provider_ref
    api = world["api"]
    api.post(
        f"/api/v1/sandbox/charges/{ref}/authenticate",
        json={"client_secret": action["client_secret"], "success": True},
    )
    assert api.post(action["complete_url"]).status_code == 200
    assert api.post(action["complete_url"]).status_code == 200  # safe to repeat
    purchase_id = r.json["purchase"]["id"]
    got = api.get(f"/api/v1/services/{world['service'].id}/topups/purchases/{purchase_id}")
    assert got.json["status"] == "credited"
    assert [b.initial for b in buckets_of(world["service"])] == [10 * GB]


@pytest.mark.spec("TOP-1")
def test_a_repeated_idempotency_key_charges_and_credits_once(app, world):
    key = str(uuid.uuid4())
    first = buy(world, "prepaid-credit-10", key)
    again = buy(world, "prepaid-credit-10", key)
    assert first.status_code == again.status_code == 201
    assert again.json == first.json and again.headers["idempotent-replayed"] == "true"
    assert SandboxCharge.select().count() == 1 and TopupPurchase.select().count() == 1
    assert [b.initial for b in buckets_of(world["service"])] == [1000]
    reused = problem(buy(world, "prepaid-credit-20", key))
    assert reused["type"] == "/problems/idempotency-key-reused"
    listed = world["api"].get(f"/api/v1/services/{world['service'].id}/topups/purchases").json
    assert [p["id"] for p in listed["items"]] == [first.json["purchase"]["id"]]


@pytest.mark.spec("TOP-1")
def test_parallel_retries_with_one_idempotency_key_charge_once(app, world):
    key, barrier, answers = str(uuid.uuid4()), threading.Barrier(4), []

    def attempt():
        barrier.wait()
        try:
            r = buy(world, "prepaid-data-20gb", key)
            answers.append(r.status_code)
        finally:
            app.database.close()

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == 4 and 201 in answers, answers
    assert set(answers) <= {201, 409}, answers  # 409: "still being processed, retry"
    assert buy(world, "prepaid-data-20gb", key).status_code == 201  # the first answer
    assert SandboxCharge.select().count() == 1 and TopupPurchase.select().count() == 1
    assert [b.initial for b in buckets_of(world["service"])] == [20 * GB]


@pytest.mark.spec("TOP-1", "USE-7")
def test_concurrent_purchases_on_one_service_lose_no_credit(app, world):
    n, barrier, errors = 6, threading.Barrier(6), []

    def attempt(i):
        barrier.wait()
        try:
            r = buy(world, "prepaid-credit-5", f"parallel-{i}")
            if r.status_code != 201 or r.json["purchase"]["status"] != "credited":
                errors.append(r.text)
        except Exception as exc:  # reported below
            errors.append(repr(exc))
        finally:
            app.database.close()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    credit = buckets_of(world["service"], "monetary")
    assert len(credit) == n and sum(b.remaining for b in credit) == n * 500
    assert SandboxCharge.select().where(SandboxCharge.status == "succeeded").count() == n
    assert Invoice.select().where(Invoice.status == "paid").count() == n


# -- charged but not credited: refunded or reconciled, never kept ----------------------------------


@pytest.mark.spec("TOP-1")
def test_a_refused_credit_is_refunded(app, world, breakage):
    breakage.refuse_credit = True
    r = buy(world, "prepaid-data-5gb", "refused-1")
    assert r.status_code == 201 and r.json["purchase"]["status"] == "refunding"
    assert buckets_of(world["service"]) == []
    assert SandboxCharge.get().status == "succeeded"  # charged; the refund is queued
    run_tasks(app)
    purchase = TopupPurchase.get()
    assert purchase.status == "refunded"
    assert SandboxCharge.get().refunded == 500
    kinds = sorted((t.kind, t.amount) for t in Transaction.select())
    assert kinds == [("payment", -500), ("refund", 500)]  # no charge, no receipt
    assert EmailDelivery.select().where(EmailDelivery.kind == "topup_refunded").count() == 1
    run_tasks(app)  # a repeated refund task gives back nothing more
    assert SandboxCharge.get().refunded == 500
    alerts = world["api"].get("/api/v1/alerts").json
    assert not [a for a in alerts["items"] if a["id"].startswith("topup-refunding")]


@pytest.mark.spec("TOP-1")
def test_a_crash_after_the_charge_is_reconciled_and_credited_once(app, world, breakage):
    breakage.crash_once = True
    crashed = buy(world, "prepaid-data-5gb", "crash-1")
    assert problem(crashed)["status"] == 500
    assert SandboxCharge.get().status == "succeeded" and buckets_of(world["service"]) == []
    assert TopupPurchase.get().status == "pending"
    assert payments.reconcile_open(app) == 0  # too fresh: another process may be recording it
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(minutes=3)):
        app.tasks.actors["plugins.billing.tasks.reconcile_payments"].send()
        run_tasks(app)
        assert payments.reconcile_open(app) == 0
    assert TopupPurchase.get().status == "credited"
    assert [b.initial for b in buckets_of(world["service"])] == [5 * GB]
    assert Invoice.select().count() == 1


@pytest.mark.spec("TOP-1")
def test_a_retry_after_a_crash_settles_the_first_purchase_instead_of_buying_again(
    app, world, breakage
):
    breakage.crash_once = True
    assert problem(buy(world, "prepaid-data-5gb", "crash-2"))["status"] == 500
    again = buy(world, "prepaid-data-5gb", "crash-2")
    assert again.status_code == 201, again.text
    assert again.json["purchase"]["status"] == "credited"
    assert SandboxCharge.select().count() == 1 and TopupPurchase.select().count() == 1
    assert [b.initial for b in buckets_of(world["service"])] == [5 * GB]
    assert buy(world, "prepaid-data-5gb", "crash-2").json == again.json  # now a replay
    other = problem(buy(world, "prepaid-data-1gb", "crash-2"))
    assert other["type"] == "/problems/idempotency-key-reused"


# -- staff: the catalogue ------------------------------------------------------------------------


@pytest.mark.spec("TOP-2")
def test_staff_edit_the_catalogue_and_customers_see_it(app, world):
    admin = as_user(api_for(app, world["user"]), staff("catalogue", name="cat"))
    new = {
        "code": "prepaid-data-2gb",
        "service_type": "prepaid",
        "kind": "data",
        "name": "2 GB data",
        "quantity": 2 * GB,
        "price": 350,
        "validity_days": 7,
    }
    r = admin.post("/api/v1/staff/topup-products", json=new)
    assert r.status_code == 201, r.text
    created = r.json
    assert created["weight"] == 20 and created["active"] is True
    assert problem(admin.post("/api/v1/staff/topup-products", json=new))["errors"]["code"]
    bad = problem(
        admin.post(
            "/api/v1/staff/topup-products",
            json={**new, "code": "x-custom", "kind": "data", "custom": True},
        )
    )
    assert {"custom", "min_amount", "max_amount"} <= set(bad["errors"])
    path = f"/api/v1/staff/topup-products/{created['id']}"
    assert admin.patch(path, json={"price": 300}).json["price"]["amount"] == 300
    assert admin.patch(path, json={}).json["price"]["amount"] == 300  # an empty change: no 500
    assert "code" in problem(admin.patch(path, json={"code": "other"}))["errors"]
    listed = world["api"].get(f"/api/v1/services/{world['service'].id}/topups").json["items"]
    assert "prepaid-data-2gb" in {i["code"] for i in listed}
    assert admin.delete(path).json["active"] is False
    listed = world["api"].get(f"/api/v1/services/{world['service'].id}/topups").json["items"]
    assert "prepaid-data-2gb" not in {i["code"] for i in listed}
    assert TopupProduct.get_by_id(created["id"]).active is False  # kept for history
    assert AuditEvent.select().where(AuditEvent.action.startswith("topup.product")).count() == 4
    nobody = as_user(api_for(app, world["user"]), staff("billing", name="bil"))
    assert nobody.get("/api/v1/staff/topup-products").status_code == 403
    assert world["api"].get("/api/v1/staff/topup-products").status_code == 401


def test_a_read_only_key_cannot_buy(app, world):
    r = world["api"].post(
        f"/api/v1/services/{world['service'].id}/topups",
        json={"product_id": world["products"]["prepaid-data-1gb"].id},
        headers={"X-Test-Scopes": "read"},
    )
    assert r.status_code == 403 and SandboxCharge.select().count() == 0


def test_the_plugin_disabled_leaves_no_trace(make_app):
    app = make_app(plugins=[("test-auth", PrincipalHeader())], disabled=["topups"])
    c, user = customer("alice")
    service = service_of(c, "prepaid")
    api = api_for(app, user)
    assert api.get(f"/api/v1/services/{service.id}/topups").status_code == 404
    assert api.get(f"/api/v1/services/{service.id}/auto-topup").status_code == 404
    actions = api.get(f"/api/v1/services/{service.id}").json["actions"]
    assert "topup" not in {a["id"] for a in actions}
    assert "topup" not in {s["id"] for s in api.get("/api/v1/sections").json["items"]}


@pytest.mark.spec("TOP-1", "BILL-2")
def test_payments_are_limited_per_service_and_the_429_says_when_to_retry(make_app):
    app = make_app(
        plugins=[("test-auth", PrincipalHeader())],
        billing={"pay_rate": "2/hour", "pay_account_rate": "5/hour"},
    )
    c, user = customer("alice")
    sandbox_card(app, c.id)
    products = topup_catalogue(app)
    api = api_for(app, user)
    lines = [service_of(c, "prepaid", identifier=f"+4477009001{i:02d}") for i in range(3)]

    def buy_for(service):
        return api.post(
            f"/api/v1/services/{service.id}/topups",
            json={"product_id": products["prepaid-data-1gb"].id},
        )

    # Two lines, two top-ups each: a business topping up its lines is not refused.
    assert [buy_for(s).status_code for s in lines[:2] for _ in range(2)] == [201] * 4
    refused = buy_for(lines[0])  # a third on one line is over that line's limit
    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 3600 and "try again" in problem(refused)["detail"]
    assert buy_for(lines[2]).status_code == 201  # the fifth payment of the customer
    assert buy_for(lines[2]).status_code == 429  # over the account's ceiling
