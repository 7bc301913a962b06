"""Paying every unpaid invoice in one payment (BILL-8), and each payment's provider reference
and 3-D Secure outcome (BILL-2), against the sandbox provider (``test_stripe.py`` has the
same through localstripe). SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid

import pytest

from billing_helpers import Events, customer, invoice_for, sandbox_card, staff
from engine import hookimpl
from engine.testing import Client, PrincipalHeader, as_user, problem
from plugins.billing import payments
from plugins.billing.models import Invoice, Payment, PaymentAllocation, Transaction
from plugins.email.models import EmailDelivery
from plugins.sandbox.models import SandboxCharge
from plugins.sandbox.provider import token_for

VISA, DECLINED, NEEDS_3DS = "4242424242424242", "4000000000000341", "4000002500003155"


class Emitted:
    """The domain events (``engine.events.emit``) webhooks and the operator's systems get."""

    def __init__(self):
        self.seen: list[tuple[str, dict]] = []

    @hookimpl
    def event_emitted(self, app, event_type, data, customer_id):
        self.seen.append((event_type, data))

    def of(self, kind: str) -> list[dict]:
        return [data for event_type, data in self.seen if event_type == kind]


@pytest.fixture
def events():
    return Events()


@pytest.fixture
def emitted():
    return Emitted()


@pytest.fixture
def app(make_app, events, emitted):
    return make_app(
        plugins=[
            ("test-auth", PrincipalHeader()),
            ("test-events", events),
            ("test-emitted", emitted),
        ]
    )


@pytest.fixture
def alice(app):
    return customer("alice")


def api_for(app, user) -> Client:
    return as_user(Client(app), user)


def browser_for(app, user) -> Client:
    browser = Client(app, headers={"Accept": "text/html"})
    browser.login(user.email)
    return browser


def pay_all(api, key=None, **body):
    headers = {"Idempotency-Key": key} if key else {}
    return api.post("/api/v1/invoices/pay-all", json=body, headers=headers)


def owed(customer_id: int) -> int:
    """What the account owes on its invoices: charges and credits less payments (the ledger)."""
    return sum(
        t.total
        for t in Transaction.select().where(
            (Transaction.customer == customer_id) & Transaction.invoice.is_null(False)
        )
    )


def three_invoices(app, customer_id):
    return [invoice_for(app, customer_id, net) for net in (1000, 2000, 500)]  # 12, 24, 6 + VAT


# -- one charge, every invoice paid (BILL-8) ---------------------------------------------------


@pytest.mark.spec("BILL-8")
def test_pay_all_takes_one_charge_and_marks_every_invoice_paid(app, alice, events, emitted):
    """BILL-8: one charge for the sum, each invoice paid, the ledger nets to nothing owed,
    one receipt, and an ``invoice.paid`` event per invoice."""
    c, user = alice
    invoices = three_invoices(app, c.id)
    card = sandbox_card(app, c.id)
    assert owed(c.id) == 4200
    r = pay_all(api_for(app, user), payment_method_id=card.id)
    assert r.status_code == 200, r.text
    body = r.json
    assert body["payment"]["status"] == "succeeded" and body["invoice"] is None
    assert body["payment"]["amount"] == {"amount": 4200, "currency": "GBP"}
    assert body["payment"]["invoice_ids"] == [i.id for i in invoices]
    assert [i["status"] for i in body["invoices"]] == ["paid"] * 3

    [charge] = SandboxCharge.select()
    assert charge.amount == 4200 and charge.status == "succeeded"
    assert charge.metadata["portico_invoices"] == ",".join(str(i.id) for i in invoices)
    for invoice in invoices:
        fresh = Invoice.get_by_id(invoice.id)
        assert fresh.status == "paid" and fresh.amount_paid == fresh.total
        [tx] = Transaction.select().where(
            (Transaction.kind == "payment") & (Transaction.invoice == invoice.id)
        )
        assert tx.amount == -fresh.total and tx.payment_id == body["payment"]["id"]
    assert owed(c.id) == 0
    assert events.succeeded == [body["payment"]["id"]]
    assert EmailDelivery.select().where(EmailDelivery.kind == "payment_received").count() == 1
    assert sorted(e["invoice_id"] for e in emitted.of("invoice.paid")) == [i.id for i in invoices]
    [succeeded] = emitted.of("payment.succeeded")
    assert succeeded["invoice_ids"] == [i.id for i in invoices] and succeeded["amount"] == 4200
    # Nothing left: a second "pay all" is a 409, and charges nothing.
    assert problem(pay_all(api_for(app, user)))["type"] == "/problems/invoice-paid"
    assert SandboxCharge.select().count() == 1


@pytest.mark.spec("BILL-8")
def test_a_declined_pay_all_leaves_every_invoice_unpaid(app, alice, events, emitted):
    """BILL-8: a decline writes nothing to any invoice; another card then pays them all."""
    c, user = alice
    invoices = three_invoices(app, c.id)
    bad = sandbox_card(app, c.id, number=DECLINED)
    body = problem(pay_all(api_for(app, user), payment_method_id=bad.id))
    assert body["status"] == 402 and body["code"] == "card_declined"
    assert [Invoice.get_by_id(i.id).status for i in invoices] == ["unpaid"] * 3
    assert not Transaction.select().where(Transaction.kind == "payment").exists()
    assert owed(c.id) == 4200 and events.succeeded == []
    assert emitted.of("invoice.paid") == []
    good = sandbox_card(app, c.id, default=False)
    assert pay_all(api_for(app, user), payment_method_id=good.id).status_code == 200
    assert owed(c.id) == 0


@pytest.mark.spec("BILL-8")
def test_pay_all_with_the_same_idempotency_key_charges_once(app, alice):
    """BILL-8: a retry (or a double click) with the same key replays the first answer."""
    c, user = alice
    three_invoices(app, c.id)
    card = sandbox_card(app, c.id)
    api = api_for(app, user)
    key = str(uuid.uuid4())
    first = pay_all(api, key, payment_method_id=card.id)
    again = pay_all(api, key, payment_method_id=card.id)
    assert first.status_code == again.status_code == 200
    assert again.json == first.json and again.headers["idempotent-replayed"] == "true"
    assert SandboxCharge.select().count() == 1 and Payment.select().count() == 1
    assert Transaction.select().where(Transaction.kind == "payment").count() == 3


@pytest.mark.spec("BILL-8")
def test_another_customers_invoices_are_never_included(app, alice):
    """BILL-8, LIM-2: only the caller's invoices are paid; naming another's is a 404."""
    (a, alice_user), (b, _) = alice, customer("bob")
    mine = three_invoices(app, a.id)
    theirs = invoice_for(app, b.id, 3000)
    card = sandbox_card(app, a.id)
    api = api_for(app, alice_user)
    named = pay_all(api, payment_method_id=card.id, invoice_ids=[mine[0].id, theirs.id])
    assert named.status_code == 404 and SandboxCharge.select().count() == 0
    r = pay_all(api, payment_method_id=card.id)
    assert r.json["payment"]["invoice_ids"] == [i.id for i in mine]
    assert Invoice.get_by_id(theirs.id).status == "unpaid"
    assert not PaymentAllocation.select().where(PaymentAllocation.invoice == theirs.id).exists()


@pytest.mark.spec("BILL-8")
def test_pay_all_pays_exactly_the_invoices_named(app, alice):
    c, user = alice
    first, second, third = three_invoices(app, c.id)
    card = sandbox_card(app, c.id)
    api = api_for(app, user)
    r = pay_all(api, payment_method_id=card.id, invoice_ids=[first.id, third.id])
    assert r.status_code == 200 and r.json["payment"]["amount"]["amount"] == 1800
    assert Invoice.get_by_id(second.id).status == "unpaid"
    # One of them paid meanwhile: nothing is charged, the customer sees what is left.
    stale = pay_all(api, payment_method_id=card.id, invoice_ids=[first.id, second.id])
    assert problem(stale)["status"] == 409 and SandboxCharge.select().count() == 1
    assert problem(pay_all(api, invoice_ids=[]))["status"] == 422
    assert problem(pay_all(api, currency="pounds"))["status"] == 422


@pytest.mark.spec("BILL-8")
def test_pay_all_waits_for_a_payment_in_flight_of_one_of_its_invoices(app, alice):
    """BILL-8: a single invoice's payment and "pay all" never both take money for it."""
    c, user = alice
    first, second, _ = three_invoices(app, c.id)
    needs_3ds = sandbox_card(app, c.id, number=NEEDS_3DS)
    card = sandbox_card(app, c.id, default=False)
    api = api_for(app, user)
    waiting = api.post(f"/api/v1/invoices/{first.id}/pay", json={"payment_method_id": needs_3ds.id})
    assert waiting.status_code == 202
    # Starting again abandons the unfinished challenge (as for one invoice), then pays all.
    r = pay_all(api, payment_method_id=card.id)
    assert r.status_code == 200, r.text
    assert Payment.get_by_id(waiting.json["payment"]["id"]).status == "canceled"
    # ...and a single payment while "pay all" waits for 3-D Secure is refused or abandons it.
    more = three_invoices(app, c.id)
    held = pay_all(api, payment_method_id=needs_3ds.id)
    assert held.status_code == 202
    single = api.post(f"/api/v1/invoices/{more[0].id}/pay", json={"payment_method_id": card.id})
    assert single.status_code == 200
    assert Payment.get_by_id(held.json["payment"]["id"]).status == "canceled"
    assert SandboxCharge.select().where(SandboxCharge.status == "succeeded").count() == 2
    assert Invoice.get_by_id(second.id).status == "paid"


@pytest.mark.spec("BILL-8")
def test_two_simultaneous_pay_alls_charge_once(app, alice):
    c, _ = alice
    three_invoices(app, c.id)
    card = sandbox_card(app, c.id)
    barrier = threading.Barrier(2)
    answers = []

    def attempt():
        barrier.wait()
        try:
            answers.append(payments.pay_invoices(app, c.id, card, via="api").status)
        except Exception as exc:  # the loser: paid already, or in progress
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
    assert SandboxCharge.select().count() == 1 and owed(c.id) == 0


@pytest.mark.spec("BILL-8")
def test_an_invoice_paid_another_way_meanwhile_is_not_paid_twice(app, alice):
    """BILL-8: the set is fixed when the payment starts; an invoice paid meanwhile (staff
    recorded a bank transfer while the bank asked for 3-D Secure) gets nothing more, and the
    money it would have had becomes account credit that the next invoice nets."""
    c, user = alice
    first, second, third = three_invoices(app, c.id)
    card = sandbox_card(app, c.id, number=NEEDS_3DS)
    api = api_for(app, user)
    r = pay_all(api, payment_method_id=card.id)
    assert r.status_code == 202
    agent = as_user(Client(app), staff("billing"))
    transfer = agent.post(
        f"/api/v1/staff/invoices/{second.id}/payments", json={"amount": 2400, "reference": "BT-1"}
    )
    assert transfer.status_code == 201, transfer.text
    payment = Payment.get_by_id(r.json["payment"]["id"])
    Client(app).post(
        f"/api/v1/sandbox/charges/{payment.provider_ref}/authenticate",
        json={"client_secret": r.json["next_action"]["client_secret"], "success": True},
    )
    done = api.post(r.json["next_action"]["complete_url"])
    assert done.status_code == 200 and done.json["payment"]["amount"]["amount"] == 4200
    assert Invoice.get_by_id(second.id).amount_paid == 2400  # not 4800
    assert [Invoice.get_by_id(i.id).status for i in (first, second, third)] == ["paid"] * 3
    applied = {a.invoice_id: a.applied for a in PaymentAllocation.select()}
    assert applied == {first.id: 1200, second.id: 0, third.id: 600}
    credit = Transaction.get(Transaction.reference == f"overpaid:{payment.id}")
    assert (credit.kind, credit.amount, credit.tax, credit.invoice_id) == ("credit", -2400, 0, None)
    # The ledger: every invoice settled, and 24.00 in the customer's favour for next time.
    assert owed(c.id) == 0
    nxt = invoice_for(app, c.id, 3000)  # 36.00 less the 24.00 credit
    assert nxt.total == 1200


@pytest.mark.spec("BILL-8", "BILL-2")
def test_pay_all_through_3ds_and_its_outcome_is_shown(app, alice):
    """BILL-8 with 3-D Secure; BILL-2: the payment shows its provider reference and the 3-D
    Secure outcome, in the API (payment, transactions) and the portal."""
    c, user = alice
    invoices = three_invoices(app, c.id)
    card = sandbox_card(app, c.id, number=NEEDS_3DS)
    api = api_for(app, user)
    r = pay_all(api, payment_method_id=card.id)
    assert r.status_code == 202 and r.json["payment"]["three_d_secure"] == "required"
    assert all(i["status"] == "unpaid" for i in r.json["invoices"])
    ref = r.json["payment"]["provider_ref"]
    assert ref.startswith("pi_sbx_")
    Client(app).post(
        f"/api/v1/sandbox/charges/{ref}/authenticate",
        json={"client_secret": r.json["next_action"]["client_secret"], "success": True},
    )
    done = api.post(r.json["next_action"]["complete_url"])
    assert done.status_code == 200 and [i["status"] for i in done.json["invoices"]] == ["paid"] * 3
    assert done.json["payment"]["three_d_secure"] == "authenticated"
    payment_id = done.json["payment"]["id"]
    shown = api.get(f"/api/v1/payments/{payment_id}").json
    assert (shown["provider_ref"], shown["three_d_secure"]) == (ref, "authenticated")
    listed = api.get("/api/v1/transactions", params={"type": "payment"}).json["items"]
    assert len(listed) == 3
    assert {(t["payment_id"], t["provider_ref"], t["three_d_secure"]) for t in listed} == {
        (payment_id, ref, "authenticated")
    }
    browser = browser_for(app, user)
    page = browser.get("/billing/transactions")
    assert f'data-provider-ref="{ref}"' in page.text
    assert 'data-three-d-secure="authenticated"' in page.text
    invoice_page = browser.get(f"/billing/invoices/{invoices[0].id}")
    assert ref in invoice_page.text and "of one payment of £42.00" in invoice_page.text


@pytest.mark.spec("BILL-2")
def test_every_payment_shows_its_reference_and_3ds_outcome(app, alice):
    """BILL-2: a card that needs no 3-D Secure says so; a failed challenge says so too."""
    c, user = alice
    paid = invoice_for(app, c.id, 1000)
    card = sandbox_card(app, c.id)
    api = api_for(app, user)
    r = api.post(f"/api/v1/invoices/{paid.id}/pay", json={"payment_method_id": card.id})
    assert r.json["payment"]["three_d_secure"] == "not_required"
    assert r.json["payment"]["provider_ref"].startswith("pi_sbx_")
    [tx] = api.get("/api/v1/transactions", params={"type": "payment"}).json["items"]
    assert tx["provider_ref"] == r.json["payment"]["provider_ref"]
    assert tx["three_d_secure"] == "not_required"
    page = browser_for(app, user).get(f"/billing/invoices/{paid.id}")
    assert 'data-three-d-secure="not_required"' in page.text

    unpaid = invoice_for(app, c.id, 1000)
    auth = sandbox_card(app, c.id, number=NEEDS_3DS, default=False)
    first = api.post(f"/api/v1/invoices/{unpaid.id}/pay", json={"payment_method_id": auth.id})
    Client(app).post(
        f"/api/v1/sandbox/charges/{first.json['payment']['provider_ref']}/authenticate",
        json={"client_secret": first.json["next_action"]["client_secret"], "success": False},
    )
    api.post(first.json["next_action"]["complete_url"])
    failed = api.get(f"/api/v1/payments/{first.json['payment']['id']}").json
    assert (failed["status"], failed["three_d_secure"]) == ("failed", "failed")
    # A charge (not a payment) has no reference.
    charges = api.get("/api/v1/transactions", params={"type": "charge"}).json["items"]
    assert {t["provider_ref"] for t in charges} == {None}


# -- the portal (BILL-8) ------------------------------------------------------------------------


@pytest.mark.spec("BILL-8")
def test_portal_pay_all_with_a_double_submit_pays_once(app, alice):
    c, user = alice
    invoices = three_invoices(app, c.id)
    card = sandbox_card(app, c.id)
    browser = browser_for(app, user)
    listing = browser.get("/billing")
    assert "Pay all (£42.00)" in listing.text and "You have 3 unpaid invoices." in listing.text
    page = browser.get("/billing/pay-all?currency=GBP")
    assert page.status_code == 200 and "Pay £42.00" in page.text
    assert all(i.number in page.text for i in invoices)
    key = page.text.split('name="idempotency_key" value="', 1)[1].split('"', 1)[0]
    ids = page.text.split('name="invoice_ids" value="', 1)[1].split('"', 1)[0]
    assert ids == ",".join(str(i.id) for i in invoices)
    form = {"idempotency_key": key, "method": str(card.id), "invoice_ids": ids}
    first = browser.post("/billing/pay-all", form=form)
    second = browser.post("/billing/pay-all", form=form)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == "/billing?done=paid-all"
    assert SandboxCharge.select().count() == 1 and owed(c.id) == 0
    after = browser.get(first.headers["location"])
    assert "those invoices are all paid" in after.text and "Pay all (" not in after.text
    assert browser.get("/billing/pay-all").status_code == 303  # nothing left to pay


@pytest.mark.spec("BILL-8")
def test_portal_pay_all_decline_and_3ds(app, alice):
    c, user = alice
    invoices = three_invoices(app, c.id)
    declined = sandbox_card(app, c.id, number=DECLINED)
    browser = browser_for(app, user)
    ids = ",".join(str(i.id) for i in invoices)
    r = browser.post(
        "/billing/pay-all",
        form={"idempotency_key": uuid.uuid4().hex, "method": str(declined.id), "invoice_ids": ids},
    )
    assert (
        r.status_code == 402 and "Your card was declined." in r.text and "data-pay-form" in r.text
    )
    assert all(Invoice.get_by_id(i.id).status == "unpaid" for i in invoices)
    missing = browser.post("/billing/pay-all", form={"idempotency_key": uuid.uuid4().hex})
    assert missing.status_code == 422

    page = browser.get("/billing/pay-all")
    setup_ref = page.text.split('name="setup_ref" value="', 1)[1].split('"', 1)[0]
    challenge = browser.post(
        "/billing/pay-all",
        form={
            "idempotency_key": uuid.uuid4().hex,
            "method": "new",
            "setup_ref": setup_ref,
            "token": token_for(NEEDS_3DS, 12, 2035),
            "invoice_ids": ids,
        },
    )
    assert challenge.status_code == 200 and "data-sandbox-challenge" in challenge.text
    assert "Payment of your unpaid invoices" in challenge.text
    sandbox_form = challenge.text.split("data-sandbox-challenge", 1)[1]
    action = sandbox_form.split('form method="post" action="', 1)[1].split('"', 1)[0]
    secret = challenge.text.split('name="client_secret" value="', 1)[1].split('"', 1)[0]
    back = challenge.text.split('name="return_to" value="', 1)[1].split('"', 1)[0]
    browser.post(action, form={"client_secret": secret, "return_to": back, "result": "complete"})
    result = browser.get(back)
    assert result.status_code == 303 and result.headers["location"] == "/billing?done=paid-all"
    assert all(Invoice.get_by_id(i.id).status == "paid" for i in invoices)
    assert "3155" not in [m.last4 for m in payments.cards_of(c.id)]  # not kept: not ticked


@pytest.mark.spec("BILL-8")
def test_pay_all_is_offered_only_for_more_than_one_unpaid_invoice(app, alice):
    c, user = alice
    browser = browser_for(app, user)
    invoice_for(app, c.id, 1000)
    assert "Pay all (" not in browser.get("/billing").text
    invoice_for(app, c.id, 1000)
    assert "Pay all (£24.00)" in browser.get("/billing").text
    # Another customer's page never offers (or pays) this customer's invoices.
    bob = customer("bob")[1]
    assert "Pay all (" not in browser_for(app, bob).get("/billing").text
    assert browser_for(app, bob).get("/billing/pay-all").status_code == 303
