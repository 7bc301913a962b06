"""The Stripe provider with the real ``stripe`` client against localstripe on loopback.

Cards are entered the way Stripe.js does it (``confirmCardSetup`` straight to
Stripe), so no card number ever reaches Portico.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import time_machine

from billing_helpers import Events, customer, invoice_for, staff
from engine.payments import ChargeRequest
from engine.models import AuditEvent
from engine.testing import Client, PrincipalHeader, as_user, problem, run_tasks
from plugins.billing import payments
from plugins.billing.models import (
    Invoice,
    Payment,
    PaymentMethod,
    ProviderCustomer,
    ProviderEvent,
    Transaction,
)
from stripe_fixtures import WEBHOOK_SECRET

VISA, DECLINED_AT_CHARGE, NEEDS_3DS, DECLINED_AT_SETUP = (
    "4242424242424242",
    "4000000000000341",
    "4000002500003155",
    "4000000000000002",
)


@pytest.fixture
def events():
    return Events()


@pytest.fixture
def app(make_app, localstripe, events):
    return make_app(
        plugins=[("test-auth", PrincipalHeader()), ("test-events", events)],
        **localstripe.settings(),
    )


@pytest.fixture
def alice(app):
    return customer("alice")


def api_for(app, user) -> Client:
    return as_user(Client(app), user)


def add_card(api, localstripe, number=VISA):
    """Start a SetupIntent, confirm it as Stripe.js would, then save the card."""
    setup = api.post("/api/v1/payment-methods/setup", json={})
    assert setup.status_code == 201, setup.text
    assert setup.json["provider"] == "stripe" and setup.json["setup_ref"].startswith("seti_")
    assert setup.json["widget"]["js_url"] == localstripe.js_url
    confirmed = localstripe.confirm_setup(
        setup.json["setup_ref"], setup.json["client_secret"], number
    )
    return confirmed, api.post(
        "/api/v1/payment-methods", json={"setup_ref": setup.json["setup_ref"]}
    )


def charges_at_stripe(localstripe) -> list:
    return [
        c
        for c in localstripe.client().v1.charges.list(params={"limit": 100}).data
        if c.status == "succeeded"
    ]


@pytest.mark.spec("BILL-5")
def test_a_card_is_saved_through_a_setup_intent(app, alice, localstripe):
    c, user = alice
    api = api_for(app, user)
    confirmed, saved = add_card(api, localstripe)
    assert confirmed.status_code == 200
    assert saved.status_code == 201, saved.text
    card = saved.json
    assert (card["brand"], card["last4"], card["exp_month"], card["exp_year"]) == (
        "visa",
        "4242",
        12,
        2034,
    )
    stored = PaymentMethod.get_by_id(card["id"])
    assert stored.provider == "stripe" and stored.ref.startswith("pm_")
    at_stripe = localstripe.client().v1.payment_methods.retrieve(stored.ref)
    assert at_stripe.customer == ProviderCustomer.get(ProviderCustomer.customer == c.id).ref
    # Deleting detaches it at Stripe too.
    assert api.delete(f"/api/v1/payment-methods/{card['id']}").status_code == 204
    assert localstripe.client().v1.payment_methods.retrieve(stored.ref).customer is None


@pytest.mark.spec("BILL-5")
def test_a_card_declined_at_setup_or_another_customers_setup_is_not_saved(app, alice, localstripe):
    c, user = alice
    api = api_for(app, user)
    confirmed, saved = add_card(api, localstripe, DECLINED_AT_SETUP)
    assert confirmed.status_code == 402
    assert problem(saved)["status"] == 402 and "not confirmed" in problem(saved)["title"]
    bob_setup = api_for(app, customer("bob")[1]).post("/api/v1/payment-methods/setup", json={}).json
    localstripe.confirm_setup(bob_setup["setup_ref"], bob_setup["client_secret"], VISA)
    stolen = api.post("/api/v1/payment-methods", json={"setup_ref": bob_setup["setup_ref"]})
    assert problem(stolen)["status"] == 402
    assert (
        "seti_" not in api.post("/api/v1/payment-methods", json={"setup_ref": "not-a-setup"}).text
    )
    assert PaymentMethod.select().count() == 0


@pytest.mark.spec("BILL-2")
def test_pay_an_invoice(app, alice, localstripe, events):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    api = api_for(app, user)
    card = add_card(api, localstripe)[1].json
    r = api.post(
        f"/api/v1/invoices/{invoice.id}/pay",
        json={"payment_method_id": card["id"]},
        headers={"Idempotency-Key": "pay-1"},
    )
    assert r.status_code == 200, r.text
    assert r.json["invoice"]["status"] == "paid"
    payment = Payment.get_by_id(r.json["payment"]["id"])
    intent = localstripe.client().v1.payment_intents.retrieve(payment.provider_ref)
    assert intent.status == "succeeded" and intent.amount == 1200 and intent.currency == "gbp"
    assert intent.metadata["portico_payment"] == str(payment.id)
    # localstripe ignores Idempotency-Key: our own record keeps it to one charge.
    again = api.post(
        f"/api/v1/invoices/{invoice.id}/pay",
        json={"payment_method_id": card["id"]},
        headers={"Idempotency-Key": "pay-1"},
    )
    assert again.json == r.json and len(charges_at_stripe(localstripe)) == 1
    assert events.succeeded == [payment.id]


@pytest.mark.spec("BILL-2")
def test_a_decline_at_charge_time_leaves_the_invoice_unpaid(app, alice, localstripe):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    api = api_for(app, user)
    card = add_card(api, localstripe, DECLINED_AT_CHARGE)[1].json
    body = problem(
        api.post(f"/api/v1/invoices/{invoice.id}/pay", json={"payment_method_id": card["id"]})
    )
    assert body["status"] == 402 and body["title"] == "Your card was declined."
    assert body["code"] == "card_declined"
    assert Invoice.get_by_id(invoice.id).status == "unpaid"
    assert not Transaction.select().where(Transaction.kind == "payment").exists()
    assert charges_at_stripe(localstripe) == []


@pytest.mark.spec("BILL-2")
def test_a_card_declined_before_it_ever_paid_is_not_kept(app, alice, localstripe):
    c, user = alice
    api = api_for(app, user)
    good = add_card(api, localstripe)[1].json
    first = invoice_for(app, c.id, 1000)
    assert (
        api.post(
            f"/api/v1/invoices/{first.id}/pay", json={"payment_method_id": good["id"]}
        ).status_code
        == 200
    )
    bad = add_card(api, localstripe, DECLINED_AT_CHARGE)[1].json
    bad_ref = PaymentMethod.get_by_id(bad["id"]).ref
    second = invoice_for(app, c.id, 500)
    assert (
        api.post(
            f"/api/v1/invoices/{second.id}/pay", json={"payment_method_id": bad["id"]}
        ).status_code
        == 402
    )
    run_tasks(app)
    listed = [m["id"] for m in api.get("/api/v1/payment-methods").json["items"]]
    assert listed == [good["id"]]  # the declined card is gone; the one that paid stays
    assert localstripe.client().v1.payment_methods.retrieve(bad_ref).customer is None
    assert (
        AuditEvent.select()
        .where(
            (AuditEvent.action == "payment_method.refused")
            & (AuditEvent.target == f"payment_method:{bad['id']}")
        )
        .exists()
    )
    assert Payment.get(Payment.invoice == second.id).method_label  # still says which card


@pytest.mark.spec("BILL-2")
def test_three_d_secure_through_stripe(app, alice, localstripe):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    api = api_for(app, user)
    card = add_card(api, localstripe, NEEDS_3DS)[1].json
    r = api.post(f"/api/v1/invoices/{invoice.id}/pay", json={"payment_method_id": card["id"]})
    assert r.status_code == 202 and r.json["payment"]["status"] == "requires_action"
    secret = r.json["next_action"]["client_secret"]
    payment = Payment.get_by_id(r.json["payment"]["id"])
    assert secret.startswith(payment.provider_ref)
    assert charges_at_stripe(localstripe) == []
    assert localstripe.authenticate(payment.provider_ref, secret).status_code == 200
    done = api.post(r.json["next_action"]["complete_url"])
    assert done.status_code == 200 and done.json["invoice"]["status"] == "paid"
    assert len(charges_at_stripe(localstripe)) == 1


def test_failed_three_d_secure_through_stripe(app, alice, localstripe):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    api = api_for(app, user)
    card = add_card(api, localstripe, NEEDS_3DS)[1].json
    r = api.post(f"/api/v1/invoices/{invoice.id}/pay", json={"payment_method_id": card["id"]})
    payment = Payment.get_by_id(r.json["payment"]["id"])
    localstripe.authenticate(
        payment.provider_ref, r.json["next_action"]["client_secret"], success=False
    )
    failed = problem(api.post(r.json["next_action"]["complete_url"]))
    assert failed["status"] == 402 and failed["code"] == "payment_intent_authentication_failure"
    assert Invoice.get_by_id(invoice.id).status == "unpaid"


def test_off_session_charges_never_wait_for_the_customer(app, alice, localstripe):
    c, user = alice
    api = api_for(app, user)
    provider = app.providers["stripe"]
    ref = payments.customer_ref(app, provider, c.id)
    good = PaymentMethod.get_by_id(add_card(api, localstripe)[1].json["id"])
    needs_auth = PaymentMethod.get_by_id(add_card(api, localstripe, NEEDS_3DS)[1].json["id"])
    seen = []
    ok = provider.charge(
        app,
        ChargeRequest(ref, good.ref, 500, "GBP", "auto-1", off_session=True),
        on_created=seen.append,
    )
    assert ok.status == "succeeded" and seen == [ok.ref]
    refused = provider.charge(
        app, ChargeRequest(ref, needs_auth.ref, 500, "GBP", "auto-2", off_session=True)
    )
    assert refused.status == "failed" and refused.code == "authentication_required"
    assert localstripe.client().v1.payment_intents.retrieve(refused.ref).status == "canceled"


def test_staff_refund_goes_back_through_stripe(app, alice, localstripe):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    api = api_for(app, user)
    card = add_card(api, localstripe)[1].json
    paid = api.post(f"/api/v1/invoices/{invoice.id}/pay", json={"payment_method_id": card["id"]})
    payment_id = paid.json["payment"]["id"]
    agent = as_user(Client(app), staff("billing"))
    r = agent.post(f"/api/v1/staff/payments/{payment_id}/refund", json={"amount": 700})
    assert r.status_code == 200, r.text
    refunds = localstripe.client().v1.refunds.list(params={"limit": 10}).data
    assert [x.amount for x in refunds] == [700]
    assert Transaction.get(Transaction.kind == "refund").amount == 700


# -- money moves once ---------------------------------------------------------------------------


@pytest.mark.spec("BILL-2")
def test_a_failure_after_stripe_charged_is_reconciled_exactly_once(app, alice, localstripe, events):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    api = api_for(app, user)
    card = add_card(api, localstripe)[1].json
    events.explode_once = True  # dies after Stripe charged, before our commit
    crashed = api.post(f"/api/v1/invoices/{invoice.id}/pay", json={"payment_method_id": card["id"]})
    assert problem(crashed)["status"] == 500
    payment = Payment.get()
    assert payment.status == "pending" and payment.provider_ref.startswith("pi_")
    assert len(charges_at_stripe(localstripe)) == 1
    assert Invoice.get_by_id(invoice.id).status == "unpaid"
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(minutes=3)):
        assert payments.reconcile_open(app) == 1
        assert payments.reconcile_open(app) == 0
    assert Payment.get_by_id(payment.id).status == "succeeded"
    assert Invoice.get_by_id(invoice.id).status == "paid"
    assert Transaction.select().where(Transaction.kind == "payment").count() == 1
    assert events.succeeded == [payment.id]
    # The customer retrying finds it paid; Stripe still holds one charge.
    again = api.post(f"/api/v1/invoices/{invoice.id}/pay", json={"payment_method_id": card["id"]})
    assert problem(again)["type"] == "/problems/invoice-paid"
    assert len(charges_at_stripe(localstripe)) == 1


@pytest.mark.spec("BILL-2")
def test_two_simultaneous_payments_charge_stripe_once(app, alice, localstripe, database_url):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    card = PaymentMethod.get_by_id(add_card(api_for(app, user), localstripe)[1].json["id"])
    barrier, answers = threading.Barrier(2), []

    def attempt():
        barrier.wait()
        try:
            answers.append(payments.pay_invoice(app, invoice.id, card, via="api").status)
        except Exception as exc:
            answers.append(getattr(exc, "slug", repr(exc)))
        finally:
            app.database.close()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert "succeeded" in answers and len(answers) == 2, answers
    assert set(answers) - {"succeeded"} <= {"invoice-paid", "payment-in-progress"}, answers
    assert len(charges_at_stripe(localstripe)) == 1
    assert Invoice.get_by_id(invoice.id).amount_paid == 1200


# -- pay all (BILL-8), provider reference and 3-D Secure outcome (BILL-2) -----------------------


@pytest.mark.spec("BILL-8", "BILL-2")
def test_pay_all_through_stripe_is_one_payment_intent(app, alice, localstripe, events):
    """BILL-8 with the real client: one PaymentIntent for the sum, every invoice paid, a
    repeat with the same Idempotency-Key charges nothing more (localstripe ignores the key:
    our record keeps it to one); BILL-2: the PaymentIntent id is the payment's reference."""
    c, user = alice
    invoices = [invoice_for(app, c.id, net) for net in (1000, 2000)]
    api = api_for(app, user)
    card = add_card(api, localstripe)[1].json
    headers = {"Idempotency-Key": "pay-all-1"}
    body = {"payment_method_id": card["id"]}
    r = api.post("/api/v1/invoices/pay-all", json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert [i["status"] for i in r.json["invoices"]] == ["paid", "paid"]
    ref = r.json["payment"]["provider_ref"]
    intent = localstripe.client().v1.payment_intents.retrieve(ref)
    assert ref.startswith("pi_") and intent.status == "succeeded" and intent.amount == 3600
    assert intent.metadata["portico_invoices"] == ",".join(str(i.id) for i in invoices)
    again = api.post("/api/v1/invoices/pay-all", json=body, headers=headers)
    assert again.json == r.json and len(charges_at_stripe(localstripe)) == 1
    assert events.succeeded == [r.json["payment"]["id"]]
    listed = api.get("/api/v1/transactions", params={"type": "payment"}).json["items"]
    assert {t["provider_ref"] for t in listed} == {ref}


@pytest.mark.spec("BILL-8")
def test_a_declined_pay_all_through_stripe_leaves_every_invoice_unpaid(app, alice, localstripe):
    c, user = alice
    invoices = [invoice_for(app, c.id, net) for net in (1000, 2000)]
    api = api_for(app, user)
    card = add_card(api, localstripe, DECLINED_AT_CHARGE)[1].json
    body = problem(api.post("/api/v1/invoices/pay-all", json={"payment_method_id": card["id"]}))
    assert body["status"] == 402 and body["code"] == "card_declined"
    assert [Invoice.get_by_id(i.id).status for i in invoices] == ["unpaid", "unpaid"]
    assert not Transaction.select().where(Transaction.kind == "payment").exists()
    assert charges_at_stripe(localstripe) == []


@pytest.mark.spec("BILL-8", "BILL-2")
def test_pay_all_with_three_d_secure_through_stripe(app, alice, localstripe):
    """BILL-2: the 3-D Secure outcome is recorded and shown ("authenticated")."""
    c, user = alice
    invoices = [invoice_for(app, c.id, net) for net in (1000, 2000)]
    api = api_for(app, user)
    card = add_card(api, localstripe, NEEDS_3DS)[1].json
    r = api.post("/api/v1/invoices/pay-all", json={"payment_method_id": card["id"]})
    assert r.status_code == 202 and r.json["payment"]["three_d_secure"] == "required"
    ref = r.json["payment"]["provider_ref"]
    assert localstripe.authenticate(ref, r.json["next_action"]["client_secret"]).status_code == 200
    done = api.post(r.json["next_action"]["complete_url"])
    assert done.status_code == 200 and [i["status"] for i in done.json["invoices"]] == [
        "paid",
        "paid",
    ]
    assert (done.json["payment"]["provider_ref"], done.json["payment"]["three_d_secure"]) == (
        ref,
        "authenticated",
    )
    page = as_user(Client(app, headers={"Accept": "text/html"}), user).get(
        f"/billing/invoices/{invoices[1].id}"
    )
    assert f'data-provider-ref="{ref}"' in page.text
    assert 'data-three-d-secure="authenticated"' in page.text
    assert len(charges_at_stripe(localstripe)) == 1


@pytest.mark.spec("BILL-2")
def test_stripes_3ds_outcome_is_read_from_the_charge():
    """BILL-2: Stripe tells the outcome on the PaymentIntent's charge (localstripe does not
    send ``payment_method_details``, so the mapping is checked on Stripe's own shapes)."""
    import stripe

    from plugins.stripe.provider import three_d_secure

    def intent(three_ds, status="succeeded"):
        return stripe.PaymentIntent.construct_from(
            {
                "id": "pi_1",
                "status": status,
                "latest_charge": {
                    "id": "ch_1",
                    "object": "charge",
                    "payment_method_details": {
                        "type": "card",
                        "card": {"three_d_secure": three_ds},
                    },
                },
            },
            "sk_test",
        )

    assert three_d_secure(intent(None)) == "not_required"
    assert three_d_secure(intent({"result": "authenticated"})) == "authenticated"
    assert three_d_secure(intent({"result": "attempt_acknowledged"})) == "attempted"
    assert three_d_secure(intent({"result": "failed"}, "requires_payment_method")) == "failed"
    assert three_d_secure(intent(None, "requires_action")) == "required"
    not_expanded = stripe.PaymentIntent.construct_from(
        {"id": "pi_2", "status": "succeeded", "latest_charge": "ch_2"}, "sk_test"
    )
    assert three_d_secure(not_expanded) == ""
    failed = stripe.PaymentIntent.construct_from(
        {"id": "pi_3", "status": "requires_payment_method", "latest_charge": None}, "sk_test"
    )
    assert three_d_secure(failed, "payment_intent_authentication_failure") == "failed"


def test_stripe_down_is_a_clear_503_not_a_500(make_app, localstripe):
    app = make_app(
        plugins=[("test-auth", PrincipalHeader())],
        **localstripe.settings(api_base="http://127.0.0.1:9"),
    )
    c, user = customer("alice")
    invoice = invoice_for(app, c.id, 1000)
    api = api_for(app, user)
    body = problem(api.post("/api/v1/payment-methods/setup", json={}))
    assert body["status"] == 503 and "not available" in body["title"]
    page = as_user(Client(app, headers={"Accept": "text/html"}), user).get(
        f"/billing/invoices/{invoice.id}/pay"
    )
    assert page.status_code == 200 and "not available right now" in page.text


# -- webhooks ---------------------------------------------------------------------------------


def signed(payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def stripe_event(localstripe, kind: str, intent_id: str) -> bytes:
    """A real event localstripe recorded, as Stripe would post it."""
    found = [
        e
        for e in localstripe.client().v1.events.list(params={"type": kind}).data
        if e.data.object.id == intent_id
    ]
    assert found, f"localstripe has no {kind} event for {intent_id}"
    return json.dumps(found[0].to_dict(), sort_keys=True).encode()


def post_webhook(app, payload: bytes, signature: str | None):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return Client(app).raw.simulate_post("/webhooks/stripe", body=payload, headers=headers)


def test_webhook_signature_tampered_stale_and_replayed(app, alice, localstripe, events):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    api = api_for(app, user)
    card = add_card(api, localstripe)[1].json
    events.explode_once = True  # our answer is lost: the webhook brings the news
    api.post(f"/api/v1/invoices/{invoice.id}/pay", json={"payment_method_id": card["id"]})
    payment = Payment.get()
    assert payment.status == "pending"
    payload = stripe_event(localstripe, "payment_intent.succeeded", payment.provider_ref)

    tampered = payload.replace(b'"amount": 1200', b'"amount": 1')
    assert tampered != payload
    for body, signature in (
        (tampered, signed(payload)),
        (payload, signed(payload, at=int(time.time()) - 3600)),
        (payload, signed(payload, secret="whsec_someone_else")),
        (payload, None),
        (b"not json", signed(b"not json")),
    ):
        refused = post_webhook(app, body, signature)
        assert problem(refused)["status"] == 400, refused.text
    assert Payment.get_by_id(payment.id).status == "pending"

    first = post_webhook(app, payload, signed(payload))
    assert first.status_code == 200 and first.json == {"received": True}
    assert Payment.get_by_id(payment.id).status == "succeeded"
    assert Invoice.get_by_id(invoice.id).status == "paid"
    replay = post_webhook(app, payload, signed(payload))
    assert replay.json == {"received": True, "duplicate": True}
    assert ProviderEvent.select().count() == 1
    assert Transaction.select().where(Transaction.kind == "payment").count() == 1
    assert events.succeeded == [payment.id]


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


def test_localstripe_delivers_a_signed_webhook_that_is_acted_on(app, alice, localstripe, events):
    server = make_server("127.0.0.1", 0, app.wsgi, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        localstripe.register_webhook(f"http://127.0.0.1:{server.server_port}/webhooks/stripe")
        c, user = alice
        invoice = invoice_for(app, c.id, 1000)
        api = api_for(app, user)
        card = add_card(api, localstripe)[1].json
        events.explode_once = True
        api.post(f"/api/v1/invoices/{invoice.id}/pay", json={"payment_method_id": card["id"]})
        payment = Payment.get()
        assert payment.status == "pending"
        # localstripe posts its events a second later (events of earlier tests may come too).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and Payment.get_by_id(payment.id).status != "succeeded":
            time.sleep(0.2)
    finally:
        localstripe.register_webhook("http://127.0.0.1:9/")  # deliver nothing more to us
        server.shutdown()
        server.server_close()
    assert ProviderEvent.select().where(ProviderEvent.type == "payment_intent.succeeded").exists()
    assert Payment.get_by_id(payment.id).status == "succeeded"
    assert Invoice.get_by_id(invoice.id).status == "paid"
    assert Transaction.select().where(Transaction.kind == "payment").count() == 1
