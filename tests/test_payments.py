"""Paying invoices (BILL-2), saved cards (BILL-5), guest links (BILL-6), idempotency, reconciliation.

These run against the sandbox provider (the embedded default); ``test_stripe.py``
runs the same flows with the real ``stripe`` client against localstripe.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import time_machine

from billing_helpers import Events, customer, invoice_for, sandbox_card, staff
from engine.idempotency import IdempotencyRecord
from engine.models import AuditEvent
from engine.testing import Client, PrincipalHeader, as_user, problem, run_tasks
from plugins.billing import guest, payments
from plugins.billing.models import GuestPayLink, Invoice, Payment, PaymentMethod, Transaction
from plugins.email.models import EmailDelivery
from plugins.sandbox.models import SandboxCard, SandboxCharge
from plugins.sandbox.provider import token_for


@pytest.fixture
def events():
    return Events()


@pytest.fixture
def app(make_app, events):
    return make_app(plugins=[("test-auth", PrincipalHeader()), ("test-events", events)])


@pytest.fixture
def alice(app):
    return customer("alice")


def api_for(app, user) -> Client:
    return as_user(Client(app), user)


def browser_for(app, user) -> Client:
    """A browser-like client signed in for real (session cookie, CSRF token)."""
    browser = Client(app, headers={"Accept": "text/html"})
    browser.login(user.email)
    return browser


def pay(api, invoice, key=None, **body):
    headers = {"Idempotency-Key": key} if key else {}
    return api.post(f"/api/v1/invoices/{invoice.id}/pay", json=body, headers=headers)


def payment_transactions(invoice) -> list[Transaction]:
    return list(
        Transaction.select().where(
            (Transaction.kind == "payment") & (Transaction.invoice == invoice.id)
        )
    )


# -- paying with a saved card (BILL-2) -----------------------------------------------------------


@pytest.mark.spec("BILL-2", "NOT-1")
def test_paying_marks_the_invoice_paid_records_a_transaction_and_sends_an_email(app, alice, events):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    card = sandbox_card(app, c.id)
    r = pay(api_for(app, user), invoice, payment_method_id=card.id)
    assert r.status_code == 200, r.text
    assert r.json["payment"]["status"] == "succeeded"
    assert r.json["invoice"]["status"] == "paid" and r.json["next_action"] is None

    fresh = Invoice.get_by_id(invoice.id)
    assert fresh.status == "paid" and fresh.amount_paid == 1200 and fresh.paid_at
    [tx] = payment_transactions(invoice)
    assert tx.amount == -1200 and tx.description == "Card payment — Visa •••• 4242"
    assert events.succeeded == [r.json["payment"]["id"]] and events.issued == [invoice.number]
    [charge] = SandboxCharge.select()
    assert charge.amount == 1200 and charge.status == "succeeded"
    actions = {e.action for e in AuditEvent.select()}
    assert {"invoice.pay", "payment.succeeded", "invoice.issued"} <= actions

    delivery = EmailDelivery.get(EmailDelivery.kind == "payment_received")
    assert delivery.address == "alice@example.com"
    run_tasks(app)
    mails = [p.read_text() for p in (app.settings.data_path / "mail").glob("*.eml")]
    receipt = [
        m for m in mails if "Payment received: =C2=A312.00" in m or "Payment received: £12.00" in m
    ]
    assert receipt and invoice.number in receipt[0]


@pytest.mark.spec("BILL-2")
def test_the_default_card_pays_when_none_is_named(app, alice):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    api = api_for(app, user)
    assert "payment_method_id" in problem(pay(api, invoice))["errors"]
    sandbox_card(app, c.id)
    assert pay(api, invoice).json["payment"]["status"] == "succeeded"
    assert problem(pay(api, invoice))["type"] == "/problems/invoice-paid"


@pytest.mark.spec("BILL-2")
def test_a_declined_card_leaves_the_invoice_unpaid_with_a_clear_message(app, alice, events):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    card = sandbox_card(app, c.id, number="4000000000000341")
    body = problem(pay(api_for(app, user), invoice, payment_method_id=card.id))
    assert body["status"] == 402 and body["type"] == "/problems/payment-failed"
    assert body["title"] == "Your card was declined." and body["code"] == "card_declined"
    assert Invoice.get_by_id(invoice.id).status == "unpaid"
    assert payment_transactions(invoice) == []
    assert events.failed == [(body["payment_id"], "card_declined")] and events.succeeded == []
    assert not EmailDelivery.select().where(EmailDelivery.kind == "payment_received").exists()
    # Another card then pays it.
    good = sandbox_card(app, c.id, default=False)
    assert pay(api_for(app, user), invoice, payment_method_id=good.id).status_code == 200


@pytest.mark.spec("BILL-2")
def test_three_d_secure_is_finished_by_the_cardholder(app, alice):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    card = sandbox_card(app, c.id, number="4000002500003155")
    api = api_for(app, user)
    r = pay(api, invoice, payment_method_id=card.id)
    assert r.status_code == 202, r.text
    action = r.json["next_action"]
    assert r.json["payment"]["status"] == "requires_action"
    assert action["type"] == "authenticate" and action["client_secret"]
    assert Invoice.get_by_id(invoice.id).status == "unpaid"
    payment = Payment.get_by_id(r.json["payment"]["id"])

    # A wrong secret does nothing; the right one, as the bank's page would, completes it.
    auth = f"/api/v1/sandbox/charges/{payment.provider_ref}/authenticate"
    assert (
        Client(app).post(auth, json={"client_secret": "nope", "success": True}).status_code == 404
    )
    assert (
        Client(app)
        .post(auth, json={"client_secret": action["client_secret"], "success": True})
        .json["status"]
        == "succeeded"
    )
    done = api.post(action["complete_url"])
    assert done.status_code == 200 and done.json["invoice"]["status"] == "paid"
    assert api.post(action["complete_url"]).status_code == 200  # safe to repeat
    assert len(payment_transactions(invoice)) == 1


def test_failed_three_d_secure_is_a_decline_and_a_new_attempt_works(app, alice):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    card = sandbox_card(app, c.id, number="4000002500003155")
    api = api_for(app, user)
    first = pay(api, invoice, payment_method_id=card.id).json
    ref = Payment.get_by_id(first["payment"]["id"]).provider_ref
    Client(app).post(
        f"/api/v1/sandbox/charges/{ref}/authenticate",
        json={"client_secret": first["next_action"]["client_secret"], "success": False},
    )
    failed = problem(api.post(first["next_action"]["complete_url"]))
    assert failed["status"] == 402 and "could not confirm" in failed["title"]
    assert Invoice.get_by_id(invoice.id).status == "unpaid"
    # An abandoned challenge does not block paying with another card.
    second = pay(api, invoice, payment_method_id=card.id).json
    good = sandbox_card(app, c.id, default=False)
    assert pay(api, invoice, payment_method_id=good.id).status_code == 200
    assert Payment.get_by_id(second["payment"]["id"]).status == "canceled"
    assert SandboxCharge.select().where(SandboxCharge.status == "succeeded").count() == 1


# -- idempotency ------------------------------------------------------------------------------


@pytest.mark.spec("BILL-2")
def test_a_repeated_idempotency_key_returns_the_first_answer_and_charges_once(app, alice):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    card = sandbox_card(app, c.id)
    api = api_for(app, user)
    key = str(uuid.uuid4())
    first = pay(api, invoice, key, payment_method_id=card.id)
    again = pay(api, invoice, key, payment_method_id=card.id)
    assert first.status_code == again.status_code == 200
    assert again.json == first.json and again.headers["idempotent-replayed"] == "true"
    assert SandboxCharge.select().count() == 1 and len(payment_transactions(invoice)) == 1
    reused = problem(pay(api, invoice, key, payment_method_id=card.id + 1))
    assert reused["status"] == 422 and reused["type"] == "/problems/idempotency-key-reused"
    assert problem(pay(api, invoice, "bad key with spaces"))["status"] == 422


@pytest.mark.spec("BILL-2")
def test_a_declined_answer_is_replayed_too(app, alice):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    card = sandbox_card(app, c.id, number="4000000000000341")
    api = api_for(app, user)
    first = pay(api, invoice, "k-declined-1", payment_method_id=card.id)
    again = pay(api, invoice, "k-declined-1", payment_method_id=card.id)
    assert first.status_code == again.status_code == 402
    assert again.json == first.json and SandboxCharge.select().count() == 1


def test_keys_belong_to_their_customer(app, alice):
    (a, alice_user), (b, bob_user) = alice, customer("bob")
    mine, theirs = invoice_for(app, a.id, 1000), invoice_for(app, b.id, 2000)
    sandbox_card(app, a.id)
    sandbox_card(app, b.id)
    assert pay(api_for(app, alice_user), mine, "shared-key").status_code == 200
    r = pay(api_for(app, bob_user), theirs, "shared-key")
    assert r.status_code == 200 and r.json["invoice"]["id"] == theirs.id


def test_idempotency_records_in_flight_and_stale(app):
    from engine.idempotency import once
    from engine.errors import Problem

    calls = []

    def work():
        calls.append(1)
        return 201, {"n": len(calls)}

    assert once("customer:1", "k", "POST /x abc", work).body == {"n": 1}
    assert once("customer:1", "k", "POST /x abc", work).replayed and len(calls) == 1
    IdempotencyRecord.create(owner="customer:1", key="busy", request="POST /x abc")
    with pytest.raises(Problem) as busy:
        once("customer:1", "busy", "POST /x abc", work)
    assert busy.value.slug == "idempotency-in-progress"
    # A record left "running" by a dead process is taken over after a while.
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(minutes=5)):
        assert once("customer:1", "busy", "POST /x abc", work).body == {"n": 2}

    # A crash (not a client error) forgets the key, so the retry runs.
    def crash():
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        once("customer:1", "boom", "POST /x abc", crash)
    assert not IdempotencyRecord.select().where(IdempotencyRecord.key == "boom").exists()


def test_a_failed_attempt_that_created_something_hands_it_to_the_retry(app, alice):
    """One mechanism for every plugin: the claim remembers what the work created (in the
    work's transaction), a failure keeps that record, and the retry with the key finds it."""
    from engine import db, idempotency
    from engine.errors import Problem

    invoice = invoice_for(app, alice[0].id, 1000)
    found = []

    def work(fail: bool):
        claim = idempotency.current()
        found.append(claim.earlier(Invoice))
        with db.database.atomic():
            claim.remember(invoice)
        if fail:
            raise RuntimeError("the provider did not answer")
        return 200, {"invoice": invoice.id}

    with pytest.raises(RuntimeError):
        idempotency.once("customer:1", "k1", "POST /x abc", lambda: work(True))
    record = IdempotencyRecord.get(IdempotencyRecord.key == "k1")
    assert (record.state, record.ref) == ("failed", f"invoice:{invoice.id}")
    with pytest.raises(Problem) as other:  # the key still belongs to that request
        idempotency.once("customer:1", "k1", "POST /y abc", lambda: work(False))
    assert other.value.slug == "idempotency-key-reused"
    outcome = idempotency.once("customer:1", "k1", "POST /x abc", lambda: work(False))
    assert outcome.body == {"invoice": invoice.id} and not outcome.replayed
    assert found == [None, invoice]  # the retry found what the first attempt made
    assert IdempotencyRecord.get(IdempotencyRecord.key == "k1").state == "done"
    # A day later the answer is forgotten but not the name: a late retry still finds it.
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(days=2)):
        idempotency.purge()
        outcome = idempotency.once("customer:1", "k1", "POST /x abc", lambda: work(False))
    assert not outcome.replayed and found[-1] == invoice
    # Outside once() (no key) the claim remembers nothing and finds nothing.
    assert idempotency.current().earlier(Invoice) is None
    idempotency.current().remember(invoice)
    assert IdempotencyRecord.select().count() == 1


# -- money moves once ---------------------------------------------------------------------------


@pytest.mark.spec("BILL-2")
def test_two_simultaneous_payments_of_one_invoice_charge_once(app, alice):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    card = sandbox_card(app, c.id)
    barrier = threading.Barrier(2)
    answers = []

    def attempt():
        barrier.wait()
        try:
            answers.append(payments.pay_invoice(app, invoice.id, card, via="api").status)
        except Exception as exc:  # the loser is refused with a 409
            answers.append(getattr(exc, "slug", repr(exc)))
        finally:
            app.database.close()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(answers) in (
        ["invoice-paid", "succeeded"],
        ["payment-in-progress", "succeeded"],
    ), answers
    assert SandboxCharge.select().count() == 1
    assert len(payment_transactions(invoice)) == 1
    assert Invoice.get_by_id(invoice.id).amount_paid == 1200


@pytest.mark.spec("BILL-2")
def test_a_crash_after_the_charge_is_reconciled_exactly_once(app, alice, events):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    card = sandbox_card(app, c.id)
    api = api_for(app, user)
    events.explode_once = True
    with pytest.raises(RuntimeError):
        payments.pay_invoice(app, invoice.id, card, via="api")
    payment = Payment.get()
    assert payment.status == "pending" and payment.provider_ref
    assert SandboxCharge.get().status == "succeeded"  # the money moved
    assert Invoice.get_by_id(invoice.id).status == "unpaid" and not payment_transactions(invoice)

    # Too fresh to touch: another process could still be recording it.
    assert payments.reconcile_open(app) == 0
    later = datetime.now(timezone.utc) + timedelta(minutes=3)
    with time_machine.travel(later):
        app.tasks.actors["plugins.billing.tasks.reconcile_payments"].send()
        run_tasks(app)
        app.tasks.actors["plugins.billing.tasks.reconcile_payments"].send()
        run_tasks(app)
    assert Payment.get_by_id(payment.id).status == "succeeded"
    assert Invoice.get_by_id(invoice.id).status == "paid"
    assert len(payment_transactions(invoice)) == 1 and events.succeeded == [payment.id]
    assert EmailDelivery.select().where(EmailDelivery.kind == "payment_received").count() == 1
    assert SandboxCharge.select().count() == 1
    # Paying again finds it paid: still one charge.
    assert problem(pay(api, invoice, payment_method_id=card.id))["status"] == 409


def test_a_retry_after_a_crash_reconciles_instead_of_charging_again(app, alice, events):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    card = sandbox_card(app, c.id)
    api = api_for(app, user)
    events.explode_once = True
    crashed = pay(api, invoice, "retry-key", payment_method_id=card.id)
    assert problem(crashed)["status"] == 500
    assert not IdempotencyRecord.select().where(IdempotencyRecord.key == "retry-key").exists()
    again = pay(api, invoice, "retry-key", payment_method_id=card.id)
    assert problem(again)["type"] == "/problems/invoice-paid"
    assert SandboxCharge.select().count() == 1 and len(payment_transactions(invoice)) == 1
    assert Invoice.get_by_id(invoice.id).status == "paid"


def test_a_payment_never_started_is_cancelled_without_asking_twice(app, alice):
    c, _ = alice
    invoice = invoice_for(app, c.id, 1000)
    card = sandbox_card(app, c.id)
    stuck = Payment.create(
        customer=c.id,
        invoice=invoice.id,
        amount=1200,
        currency="GBP",
        provider="sandbox",
        method=card.id,
        attempt_key="stuck",
    )
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(minutes=3)):
        assert payments.reconcile_open(app) == 1
    assert Payment.get_by_id(stuck.id).status == "canceled"
    assert SandboxCharge.select().count() == 0


# -- saved cards (BILL-5) -----------------------------------------------------------------------


@pytest.mark.spec("BILL-5")
def test_add_list_default_and_delete_cards(app, alice):
    c, user = alice
    api = api_for(app, user)
    setup = api.post("/api/v1/payment-methods/setup", json={})
    assert setup.status_code == 201 and setup.json["provider"] == "sandbox"
    token = token_for("4242424242424242", 8, 2031)
    r = api.post(
        "/api/v1/payment-methods", json={"setup_ref": setup.json["setup_ref"], "token": token}
    )
    assert r.status_code == 201, r.text
    first = r.json
    assert (first["brand"], first["last4"], first["exp_month"], first["exp_year"]) == (
        "visa",
        "4242",
        8,
        2031,
    )
    assert first["is_default"]
    second_setup = api.post("/api/v1/payment-methods/setup", json={}).json["setup_ref"]
    second = api.post(
        "/api/v1/payment-methods",
        json={"setup_ref": second_setup, "token": token_for("5555555555554444", 1, 2033)},
    ).json
    assert not second["is_default"]
    listed = api.get("/api/v1/payment-methods").json["items"]
    assert [m["last4"] for m in listed] == ["4242", "4444"]
    assert api.post(f"/api/v1/payment-methods/{second['id']}/default").json["is_default"]
    assert [m["last4"] for m in api.get("/api/v1/payment-methods").json["items"]] == [
        "4444",
        "4242",
    ]
    assert api.delete(f"/api/v1/payment-methods/{second['id']}").status_code == 204
    remaining = api.get("/api/v1/payment-methods").json["items"]
    assert [(m["last4"], m["is_default"]) for m in remaining] == [("4242", True)]
    assert SandboxCard.get(SandboxCard.last4 == "4444").detached
    actions = [e.action for e in AuditEvent.select().order_by(AuditEvent.id)]
    assert actions.count("payment_method.added") == 2 and "payment_method.deleted" in actions


@pytest.mark.spec("BILL-5")
def test_card_setup_refuses_bad_input_clearly_and_saves_nothing(app, alice):
    c, user = alice
    api = api_for(app, user)
    setup = api.post("/api/v1/payment-methods/setup", json={}).json["setup_ref"]
    assert "setup_ref" in problem(api.post("/api/v1/payment-methods", json={}))["errors"]
    bad = problem(
        api.post("/api/v1/payment-methods", json={"setup_ref": setup, "token": "4242424242424242"})
    )
    assert bad["status"] == 402 and "test card" in bad["title"]
    expired = problem(
        api.post(
            "/api/v1/payment-methods",
            json={"setup_ref": setup, "token": token_for("4242424242424242", 1, 2020)},
        )
    )
    assert expired["title"] == "Your card has expired."
    other_setup = payments.start_setup(app, customer("bob")[0].id)[1].ref
    stolen = problem(
        api.post(
            "/api/v1/payment-methods",
            json={"setup_ref": other_setup, "token": token_for("4242424242424242", 1, 2030)},
        )
    )
    assert stolen["status"] == 402
    assert PaymentMethod.select().count() == 0


@pytest.mark.spec("LIM-2")
def test_another_customers_cards_and_payments_are_404(app, alice):
    (a, alice_user), (b, _) = alice, customer("bob")
    theirs = sandbox_card(app, b.id)
    invoice = invoice_for(app, a.id, 1000)
    api = api_for(app, alice_user)
    assert pay(api, invoice, payment_method_id=theirs.id).status_code == 404
    assert api.delete(f"/api/v1/payment-methods/{theirs.id}").status_code == 404
    assert api.post(f"/api/v1/payment-methods/{theirs.id}/default").status_code == 404
    their_invoice = invoice_for(app, b.id, 1000)
    paid = payments.pay_invoice(app, their_invoice.id, theirs).payment
    assert api.get(f"/api/v1/payments/{paid.id}").status_code == 404
    assert api.post(f"/api/v1/payments/{paid.id}/complete").status_code == 404
    assert api.get("/api/v1/payment-methods").json["items"] == []


@pytest.mark.spec("NOT-2", "BILL-5")
def test_a_card_about_to_expire_raises_an_alert_and_one_email(app, alice):
    c, user = alice
    with time_machine.travel(datetime(2026, 2, 10, tzinfo=timezone.utc), tick=False):
        sandbox_card(app, c.id, month=2, year=2026)
        sandbox_card(app, c.id, number="5555555555554444", month=9, year=2027, default=False)
        alerts = api_for(app, user).get("/api/v1/alerts").json["items"]
        run_tasks(app)
        app.tasks.actors["plugins.billing.tasks.warn_expiring_cards"].send()
        app.tasks.actors["plugins.billing.tasks.warn_expiring_cards"].send()
        run_tasks(app)
    expiring = [a for a in alerts if a["id"].startswith("card-expiring-")]
    assert len(expiring) == 1 and "Visa •••• 4242" in expiring[0]["message"]
    assert "02/2026" in expiring[0]["message"]
    assert EmailDelivery.select().where(EmailDelivery.kind == "card_expiring").count() == 1


# -- guest payment links (BILL-6) ---------------------------------------------------------------


def guest_link(app, user, invoice) -> str:
    r = api_for(app, user).post(f"/api/v1/invoices/{invoice.id}/payment-links", json={})
    assert r.status_code == 201, r.text
    return r.json["url"].removeprefix("http://portal.test")


def guest_pay(app, path: str, number="4242424242424242", **extra):
    """Open a guest link in a fresh browser-like client and pay it with a new card."""
    browser = Client(app, headers={"Accept": "text/html"})
    opened = browser.get(path)
    assert opened.status_code == 303 and opened.headers["location"] == "/pay"
    assert opened.headers["referrer-policy"] == "no-referrer"
    page = browser.get("/pay")
    assert page.status_code == 200, page.text[:500]
    setup_ref = page.text.split('name="setup_ref" value="', 1)[1].split('"', 1)[0]
    form = {
        "idempotency_key": uuid.uuid4().hex,
        "method": "new",
        "setup_ref": setup_ref,
        "token": token_for(number, 12, 2035),
        **extra,
    }
    return browser, page, browser.post("/pay", form=form)


@pytest.mark.spec("BILL-6")
def test_a_guest_link_pays_only_its_invoice_for_the_servers_amount(app, alice, caplog):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    other = invoice_for(app, c.id, 5000)
    saved = sandbox_card(app, c.id)
    caplog.set_level(logging.DEBUG)
    path = guest_link(app, user, invoice)
    token = path.removeprefix("/pay/")
    browser, page, paid = guest_pay(app, path, amount="1", invoice_id=str(other.id))
    assert "£12.00" in page.text
    assert f'name="method" value="{saved.id}"' not in page.text  # no saved cards for guests
    assert page.headers["referrer-policy"] == "no-referrer"
    assert paid.status_code == 303 and paid.headers["location"] == "/pay?done=guest-paid"
    assert Invoice.get_by_id(invoice.id).status == "paid"
    assert Invoice.get_by_id(other.id).status == "unpaid"
    [charge] = SandboxCharge.select()
    assert charge.amount == 1200
    payment = Payment.get(Payment.via == "guest")
    assert payment.guest_link_id and payment.user_id is None
    # The guest's card is not the customer's: never listed, then forgotten.
    assert [m.id for m in payments.cards_of(c.id)] == [saved.id]
    run_tasks(app)
    assert not PaymentMethod.select().where(PaymentMethod.single_use).exists()
    assert SandboxCard.get(SandboxCard.ref == charge.card_ref).detached
    # Tokens never reach a log line.
    assert all(token not in r.getMessage() for r in caplog.records)
    assert browser.get("/pay").status_code == 200  # the link shows the invoice is paid


@pytest.mark.spec("BILL-6")
def test_a_guest_link_expires_can_be_revoked_and_cannot_be_forged(app, alice):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    path = guest_link(app, user, invoice)
    assert Client(app).get(path[:-3] + "abc").status_code == 404  # tampered signature
    assert Client(app).get("/pay/" + "x" * 40 + ".y").status_code == 404
    assert Client(app).get("/pay").status_code == 404  # no cookie, no invoice
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(days=15)):
        gone = Client(app, headers={"Accept": "text/html"}).get(path)
        assert gone.status_code == 404 and "not valid" in gone.text
        assert gone.headers["referrer-policy"] == "no-referrer"
    links = api_for(app, user).get(f"/api/v1/invoices/{invoice.id}/payment-links").json
    assert links["items"][0]["state"] == "active" and links["items"][0]["url"] is None
    browser = Client(app, headers={"Accept": "text/html"})
    assert browser.get(path).status_code == 303
    revoked = api_for(app, user).delete(f"/api/v1/payment-links/{links['items'][0]['id']}")
    assert revoked.json["state"] == "revoked"
    assert browser.get("/pay").status_code == 404  # the cookie's link is revoked too
    assert Client(app).get(path).status_code == 404
    assert GuestPayLink.select().count() == 1
    assert len(GuestPayLink.get().token_hash) == 64  # only a hash is stored


@pytest.mark.spec("BILL-6")
def test_a_guest_cannot_use_the_customers_saved_cards(app, alice):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    saved = sandbox_card(app, c.id)
    browser = Client(app, headers={"Accept": "text/html"})
    browser.get(guest_link(app, user, invoice))
    r = browser.post("/pay", form={"idempotency_key": uuid.uuid4().hex, "method": str(saved.id)})
    assert r.status_code == 404
    assert SandboxCharge.select().count() == 0


def test_guest_tokens_are_redacted_from_access_logs():
    record = logging.LogRecord(
        "gunicorn.access", logging.INFO, __file__, 1, '%(h)s "%(r)s"', None, None
    )
    record.args = {"h": "1.2.3.4", "r": "GET /pay/abcdefghijklmnopqrstuvwxyz.0123 HTTP/1.1"}
    guest.RedactTokens().filter(record)
    assert "abcdefghijklmnop" not in record.getMessage() and "/pay/***" in record.getMessage()
    guest.redact_tokens()
    assert any(
        isinstance(f, guest.RedactTokens) for f in logging.getLogger("gunicorn.access").filters
    )


# -- the portal's pay page (BILL-2) --------------------------------------------------------------


@pytest.mark.spec("BILL-2")
def test_pay_page_with_a_saved_card_and_a_double_submit(app, alice):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    card = sandbox_card(app, c.id)
    browser = browser_for(app, user)
    page = browser.get(f"/billing/invoices/{invoice.id}/pay")
    assert page.status_code == 200 and card.label in page.text and "£12.00" in page.text
    assert 'data-sandbox-number' in page.text and 'name="number"' not in page.text
    key = page.text.split('name="idempotency_key" value="', 1)[1].split('"', 1)[0]
    form = {"idempotency_key": key, "method": str(card.id)}
    first = browser.post(f"/billing/invoices/{invoice.id}/pay", form=form)
    second = browser.post(f"/billing/invoices/{invoice.id}/pay", form=form)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == f"/billing/invoices/{invoice.id}?done=paid"
    assert SandboxCharge.select().count() == 1
    shown = browser.get(first.headers["location"])
    assert "Payment received" in shown.text


@pytest.mark.spec("BILL-2")
def test_pay_page_with_a_new_card_that_asks_for_3ds(app, alice):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    browser = browser_for(app, user)
    page = browser.get(f"/billing/invoices/{invoice.id}/pay")
    setup_ref = page.text.split('name="setup_ref" value="', 1)[1].split('"', 1)[0]
    challenge = browser.post(
        f"/billing/invoices/{invoice.id}/pay",
        form={
            "idempotency_key": uuid.uuid4().hex,
            "method": "new",
            "setup_ref": setup_ref,
            "token": token_for("4000002500003155", 12, 2035),
            "save_card": "true",
        },
    )
    assert challenge.status_code == 200 and "data-sandbox-challenge" in challenge.text
    sandbox_form = challenge.text.split("data-sandbox-challenge", 1)[1]
    action = sandbox_form.split('form method="post" action="', 1)[1].split('"', 1)[0]
    secret = challenge.text.split('name="client_secret" value="', 1)[1].split('"', 1)[0]
    back = challenge.text.split('name="return_to" value="', 1)[1].split('"', 1)[0]
    done = browser.post(
        action, form={"client_secret": secret, "return_to": back, "result": "complete"}
    )
    assert done.status_code == 303 and done.headers["location"] == back
    result = browser.get(back)
    assert result.status_code == 303 and result.headers["location"].endswith("?done=paid")
    assert Invoice.get_by_id(invoice.id).status == "paid"
    assert [m.last4 for m in payments.cards_of(c.id)] == ["3155"]  # kept, as asked


@pytest.mark.spec("BILL-2")
def test_pay_page_shows_a_decline_beside_the_form(app, alice):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    card = sandbox_card(app, c.id, number="4000000000009995")
    browser = browser_for(app, user)
    r = browser.post(
        f"/billing/invoices/{invoice.id}/pay",
        form={"idempotency_key": uuid.uuid4().hex, "method": str(card.id)},
    )
    assert r.status_code == 402 and "Your card has insufficient funds." in r.text
    assert 'data-pay-form' in r.text  # the form again, to try another card
    missing = browser.post(
        f"/billing/invoices/{invoice.id}/pay", form={"idempotency_key": uuid.uuid4().hex}
    )
    assert missing.status_code == 422 and "Choose how to pay." in missing.text
    assert Invoice.get_by_id(invoice.id).status == "unpaid"


def test_card_pages(app, alice):
    c, user = alice
    browser = browser_for(app, user)
    page = browser.get("/billing/payment-methods")
    setup_ref = page.text.split('name="setup_ref" value="', 1)[1].split('"', 1)[0]
    added = browser.post(
        "/billing/payment-methods",
        form={"setup_ref": setup_ref, "token": token_for("4242424242424242", 3, 2032)},
    )
    assert added.status_code == 303
    listing = browser.get(added.headers["location"])
    assert "Visa •••• 4242" in listing.text and "Your card has been saved." in listing.text
    card = PaymentMethod.get()
    fresh = listing.text.split('name="setup_ref" value="', 1)[1].split('"', 1)[0]
    bad = browser.post(
        "/billing/payment-methods", form={"setup_ref": fresh, "token": "sbx_nonsense"}
    )
    assert bad.status_code == 402 and "test card numbers" in bad.text
    assert PaymentMethod.select().count() == 1
    assert browser.post(f"/billing/payment-methods/{card.id}/delete", form={}).status_code == 303
    assert PaymentMethod.select().count() == 0


# -- staff refunds, webhooks ---------------------------------------------------------------------


def test_staff_refund_is_recorded_once(app, alice):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    card = sandbox_card(app, c.id)
    payment = payments.pay_invoice(app, invoice.id, card).payment
    agent = as_user(Client(app), staff("billing"))
    path = f"/api/v1/staff/payments/{payment.id}/refund"
    r = agent.post(path, json={"amount": 500}, headers={"Idempotency-Key": "refund-1"})
    again = agent.post(path, json={"amount": 500}, headers={"Idempotency-Key": "refund-1"})
    assert r.status_code == again.status_code == 200 and r.json == again.json
    assert Transaction.select().where(Transaction.kind == "refund").count() == 1
    assert SandboxCharge.get().refunded == 500
    too_much = problem(agent.post(path, json={"amount": 1000}))
    assert too_much["status"] == 422 and "amount" in too_much["errors"]
    customer_try = api_for(app, user).post(path, json={"amount": 1})
    assert customer_try.status_code == 401


def test_webhooks_for_unknown_or_silent_providers_are_refused(app):
    assert Client(app).post("/webhooks/nope", json={}).status_code == 404
    refused = Client(app).post("/webhooks/sandbox", json={"id": "evt_1"})
    assert problem(refused)["status"] == 400


# -- the billing event hooks (one test per hook, as tests/test_hooks.py asks) -------------------


def test_hook_invoice_issued(app, alice, events):
    c, _ = alice
    invoice = invoice_for(app, c.id, 1000)
    assert events.issued == [invoice.number]


def test_hook_payment_succeeded(app, alice, events):
    c, _ = alice
    invoice = invoice_for(app, c.id, 1000)
    attempt = payments.pay_invoice(app, invoice.id, sandbox_card(app, c.id))
    assert events.succeeded == [attempt.payment.id] and events.failed == []


def test_hook_payment_failed(app, alice, events):
    c, _ = alice
    invoice = invoice_for(app, c.id, 1000)
    card = sandbox_card(app, c.id, number="4000000000009995")
    attempt = payments.pay_invoice(app, invoice.id, card)
    assert events.failed == [(attempt.payment.id, "insufficient_funds")]
    assert events.succeeded == []


def test_payment_attempts_are_rate_limited(make_app):
    app = make_app(plugins=[("test-auth", PrincipalHeader())], billing={"pay_rate": "2/hour"})
    c, user = customer("alice")
    card = sandbox_card(app, c.id, number="4000000000000341")
    invoice = invoice_for(app, c.id, 1000)
    api = api_for(app, user)
    assert [pay(api, invoice, payment_method_id=card.id).status_code for _ in range(3)] == [
        402,
        402,
        429,
    ]
    assert SandboxCharge.select().count() == 2


def test_other_plugins_charge_a_card_for_their_own_purpose(app, alice, events):
    c, _ = alice
    card = sandbox_card(app, c.id)
    payment = payments.new_payment(
        c.id, 500, "gbp", card, purpose="topup", via="auto", off_session=True
    )
    attempt = payments.charge(app, payment)
    paid = attempt.payment
    assert paid.status == "succeeded" and paid.invoice_id is None
    assert (paid.purpose, paid.currency) == ("topup", "GBP")
    assert events.succeeded == [paid.id] and SandboxCharge.get().off_session
    tx = Transaction.get(Transaction.payment == paid.id)
    assert tx.amount == -500 and "topup" in tx.description
    needs_auth = sandbox_card(app, c.id, number="4000002500003155", default=False)
    refused = payments.charge(
        app, payments.new_payment(c.id, 500, "GBP", needs_auth, purpose="topup", off_session=True)
    ).payment
    assert refused.status == "failed" and refused.failure_code == "authentication_required"
