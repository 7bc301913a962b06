"""Invoices, transactions and offline payments pushed through the operator API (INT-4, INT-1):
idempotent upserts, totals that must add up, the PDF the customer downloads, money moving
once, the ledger netting, isolation and hostile input."""

import json
from datetime import timedelta

import pytest

from engine.db import connection, utcnow
from engine.models import Customer, StaffUser
from engine.testing import Client, problem, run_tasks
from identity_support import core_demo, signed_in  # noqa: F401
from plugins.billing.models import Invoice, Payment, Transaction
from plugins.operator import tokens
from plugins.webhooks.models import WebhookEndpoint, WebhookEvent
from test_operator_api import API, CUSTOMER, events, op  # noqa: F401

ISSUED = "2026-12-01T09:00:00+00:00"


def line(description="Mobile 20 GB — December", quantity=1, unit=1500, rate=2000, tax=300):
    return {
        "description": description,
        "quantity": quantity,
        "unit_amount": unit,
        "tax_rate": rate,
        "tax_amount": tax,
    }


def invoice_body(*lines, customer="ACC-ALICE", **extra):
    lines = lines or (line(),)
    subtotal = sum(li["quantity"] * li["unit_amount"] for li in lines)
    tax = sum(li["tax_amount"] for li in lines)
    return {
        "customer_external_id": customer,
        "number": "OP-0001",
        "issued_at": ISSUED,
        "due_at": "2026-12-15T09:00:00+00:00",
        "currency": "GBP",
        "lines": list(lines),
        "subtotal": subtotal,
        "tax_total": tax,
        "total": subtotal + tax,
        **extra,
    }


def pay_body(amount, invoice="INV-1", **extra):
    return {
        "customer_external_id": "ACC-ALICE",
        "invoice_external_id": invoice,
        "amount": amount,
        "currency": "GBP",
        "method": "bank_transfer",
        "reference": "BACS 123",
        **extra,
    }


@pytest.fixture
def alice_op(op):
    """``op`` with alice's demo account known to the operator as ACC-ALICE."""
    with connection():
        Customer.update(external_id="ACC-ALICE").where(Customer.number == "C-100001").execute()
    return op


def balance(external_id="ACC-ALICE") -> int:
    with connection():
        customer = Customer.get(Customer.external_id == external_id)
        return sum(t.total for t in Transaction.select().where(Transaction.customer == customer))


@pytest.mark.spec("INT-4")
def test_a_pushed_invoice_is_idempotent_rendered_and_downloadable_by_the_customer(alice_op):
    made = alice_op.put(f"{API}/invoices/INV-1", json=invoice_body())
    assert made.status_code == 201, made.text
    assert made.json["change"] == "created" and made.json["number"] == "OP-0001"
    assert made.json["total"] == 1800 and made.json["amount_due"] == 1800
    assert made.json["customer_external_id"] == "ACC-ALICE" and made.json["status"] == "unpaid"
    again = alice_op.put(f"{API}/invoices/INV-1", json=invoice_body())
    assert again.status_code == 200 and again.json["change"] == "unchanged"
    assert len(events("invoice.created")) == 1 and events("invoice.updated") == []
    run_tasks(alice_op.app)
    alice = signed_in(alice_op.app, "alice@example.com")
    listed = alice.get("/api/v1/invoices").json["items"]
    [mine] = [i for i in listed if i["number"] == "OP-0001"]
    pdf = alice.get(f"/api/v1/invoices/{mine['id']}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    from test_billing import pdf_text

    text = pdf_text(pdf.content)
    assert "OP-0001" in text and "Mobile 20 GB" in text
    assert alice_op.get(f"{API}/invoices/INV-1").json["pdf_ready"] is True
    # Its lines are the account's charges, invoiced to it.
    assert balance() == 1800
    tx = alice.get("/api/v1/transactions").json["items"]
    assert [(t["amount"]["amount"], t["invoice_number"]) for t in tx] == [(1800, "OP-0001")]


@pytest.mark.spec("INT-4")
def test_totals_that_do_not_add_up_are_refused_and_nothing_is_written(alice_op):
    body = invoice_body(line(), line("Roaming", 2, 250, 0, 0))
    assert body["total"] == 2300
    wrong = alice_op.put(f"{API}/invoices/INV-1", json={**body, "subtotal": 1999, "total": 2299})
    assert wrong.status_code == 422
    assert set(problem(wrong)["errors"]) == {"subtotal"}
    tax = alice_op.put(f"{API}/invoices/INV-1", json={**body, "total": 2400})
    assert problem(tax)["errors"]["total"] == ["Must be the sum of subtotal + tax_total (2300)."]
    bad_line = dict(line(), amount=1499)
    mismatch = alice_op.put(f"{API}/invoices/INV-1", json=invoice_body(bad_line))
    assert "lines.0.amount" in problem(mismatch)["errors"]
    sign = alice_op.put(f"{API}/invoices/INV-1", json=invoice_body(line(tax=-300), total=1200))
    assert "lines.0.tax_amount" in problem(sign)["errors"]
    with connection():
        assert Invoice.select().where(Invoice.external_id == "INV-1").count() == 0
        assert Transaction.select().count() == 0
    assert events("invoice.created") == []


@pytest.mark.spec("INT-4")
def test_changed_lines_make_a_new_revision_until_anything_is_paid(alice_op):
    alice_op.put(f"{API}/invoices/INV-1", json=invoice_body())
    run_tasks(alice_op.app)
    with connection():
        first = Invoice.get(Invoice.external_id == "INV-1")
    changed = alice_op.put(f"{API}/invoices/INV-1", json=invoice_body(line(unit=2000, tax=400)))
    assert changed.status_code == 200 and changed.json["change"] == "updated"
    assert changed.json["total"] == 2400 and changed.json["revision"] == 1
    assert changed.json["pdf_ready"] is False
    run_tasks(alice_op.app)
    with connection():
        second = Invoice.get(Invoice.external_id == "INV-1")
    assert second.pdf_path != first.pdf_path and second.pdf_sha256 != first.pdf_sha256
    assert balance() == 2400  # the old lines left the ledger with the old revision
    # Overdue is a status change only: no new revision.
    late = alice_op.put(
        f"{API}/invoices/INV-1", json=invoice_body(line(unit=2000, tax=400), status="overdue")
    )
    assert late.json["status"] == "overdue" and late.json["revision"] == 1
    paid = alice_op.put(f"{API}/invoices/INV-1", json=invoice_body(status="paid"))
    assert paid.status_code == 422 and "status" in problem(paid)["errors"]
    assert alice_op.put(f"{API}/payments/P-1", json=pay_body(1000)).status_code == 201
    locked = alice_op.put(f"{API}/invoices/INV-1", json=invoice_body())
    assert locked.status_code == 409 and problem(locked)["type"].endswith("invoice-paid")
    assert alice_op.get(f"{API}/invoices/INV-1").json["total"] == 2400


@pytest.mark.spec("INT-4")
def test_an_offline_payment_moves_money_once_and_marks_the_invoice_paid(alice_op):
    alice_op.put(f"{API}/invoices/INV-1", json=invoice_body())
    part = alice_op.put(f"{API}/payments/P-1", json=pay_body(800))
    assert part.status_code == 201 and part.json["change"] == "created", part.text
    assert alice_op.get(f"{API}/invoices/INV-1").json["status"] == "unpaid"
    again = alice_op.put(f"{API}/payments/P-1", json=pay_body(800))
    assert again.status_code == 200 and again.json["change"] == "unchanged"
    other = alice_op.put(f"{API}/payments/P-1", json=pay_body(900))
    assert other.status_code == 409 and problem(other)["type"].endswith("payment-recorded")
    rest = alice_op.put(f"{API}/payments/P-2", json=pay_body(1000, received_at=ISSUED))
    assert rest.status_code == 201
    invoice = alice_op.get(f"{API}/invoices/INV-1").json
    assert invoice["status"] == "paid" and invoice["amount_paid"] == 1800
    assert balance() == 0  # 1800 charged, 800 + 1000 paid
    with connection():
        assert Payment.select().where(Payment.provider == "offline").count() == 2
        received = Transaction.get(Transaction.reference.startswith("payment:"), amount=-1000)
        assert received.occurred_at.isoformat().startswith("2026-12-01T09:00")
    assert len(events("payment.succeeded")) == 2 and len(events("payment.recorded")) == 2
    # Nothing is owed: neither a card nor another offline payment takes money for it.
    twice = alice_op.put(f"{API}/payments/P-3", json=pay_body(100))
    assert twice.status_code == 409 and problem(twice)["type"].endswith("invoice-paid")
    alice = signed_in(alice_op.app, "alice@example.com")
    with connection():
        invoice_id = Invoice.get(Invoice.external_id == "INV-1").id
    card = alice.post(f"/api/v1/invoices/{invoice_id}/pay", json={})
    assert card.status_code in (409, 422) and balance() == 0


@pytest.mark.spec("INT-6")
def test_payment_events_for_a_pushed_invoice_name_the_operators_invoice(alice_op):
    """The operator's systems know the invoice by its external id (they never see Portico's)."""
    with connection():
        WebhookEndpoint.create(
            url="https://crm.example.net/hooks",
            event_types="payment.succeeded invoice.paid",
            secret="whsec_x",
        )
    alice_op.put(f"{API}/invoices/INV-1", json=invoice_body())
    assert alice_op.put(f"{API}/payments/P-1", json=pay_body(1800)).status_code == 201
    with connection():
        sent = {e.type: json.loads(e.data) for e in WebhookEvent.select()}
    assert sent["payment.succeeded"]["invoice_external_id"] == "INV-1"
    assert sent["payment.succeeded"]["invoice_number"] == "OP-0001"
    assert sent["invoice.paid"]["invoice_external_id"] == "INV-1"
    assert sent["invoice.paid"]["customer_external_id"] == "ACC-ALICE"


@pytest.mark.spec("INT-4")
def test_more_than_owed_pays_the_invoice_and_the_surplus_is_a_credit(alice_op):
    alice_op.put(f"{API}/invoices/INV-1", json=invoice_body())
    over = alice_op.put(f"{API}/payments/P-1", json=pay_body(2000))
    assert over.status_code == 201
    invoice = alice_op.get(f"{API}/invoices/INV-1").json
    assert invoice["status"] == "paid" and invoice["amount_due"] == 0
    assert balance() == -200
    [recorded] = events("payment.recorded")
    assert recorded.data["surplus"] == 200
    on_account = alice_op.put(f"{API}/payments/P-2", json=pay_body(500, invoice=None))
    assert on_account.status_code == 201 and on_account.json["invoice_external_id"] is None
    assert balance() == -700


@pytest.mark.spec("INT-4")
def test_pushed_transactions_show_in_the_customers_list_and_net_in_the_ledger(alice_op):
    charge = {
        "customer_external_id": "ACC-ALICE",
        "kind": "charge",
        "description": "Engineer visit",
        "amount": 5000,
        "currency": "GBP",
        "tax_rate": 2000,
    }
    made = alice_op.put(f"{API}/transactions/T-1", json=charge)
    assert made.status_code == 201 and made.json["tax"] == 1000 and made.json["total"] == 6000
    assert alice_op.put(f"{API}/transactions/T-1", json=charge).json["change"] == "unchanged"
    adjust = {**charge, "kind": "adjustment", "description": "Goodwill", "amount": -1000}
    assert alice_op.put(f"{API}/transactions/T-2", json=adjust).json["kind"] == "credit"
    wrong = alice_op.put(f"{API}/transactions/T-3", json={**charge, "amount": -5})
    assert wrong.status_code == 422 and "amount" in problem(wrong)["errors"]
    assert balance() == 6000 - 1200
    assert alice_op.put(f"{API}/payments/P-1", json=pay_body(4800, invoice=None)).status_code == 201
    assert balance() == 0
    alice = signed_in(alice_op.app, "alice@example.com")
    listed = alice.get("/api/v1/transactions").json["items"]
    nets = {t["description"]: t["net"]["amount"] for t in listed}
    assert nets["Engineer visit"] == 5000 and nets["Goodwill"] == -1000
    fixed = alice_op.put(f"{API}/transactions/T-1", json={**charge, "amount": 4000})
    assert fixed.json["change"] == "updated" and balance() == -1200


@pytest.mark.spec("INT-1")
def test_billing_writes_need_the_billing_scope_and_reads_the_read_scope(alice_op):
    with connection():
        admin = StaffUser.get(StaffUser.email == "admin@example.com")
        token, _ = tokens.create(
            alice_op.app, "CRM", ["read", "customers:write"], utcnow() + timedelta(days=5), admin
        )
    crm = Client(alice_op.app, headers={"Authorization": f"Bearer {token}"})
    for path in ("invoices/INV-1", "transactions/T-1", "payments/P-1"):
        refused = crm.put(f"{API}/{path}", json={})
        assert refused.status_code == 403 and problem(refused)["type"].endswith("missing-scope")
    alice_op.put(f"{API}/invoices/INV-1", json=invoice_body())
    assert crm.get(f"{API}/invoices/INV-1").json["number"] == "OP-0001"
    # Customer sign-ins do not open the operator API.
    alice = signed_in(alice_op.app, "alice@example.com")
    assert alice.get(f"{API}/invoices").status_code == 401


@pytest.mark.spec("INT-4")
def test_isolation_objects_cannot_move_between_customers(alice_op):
    assert alice_op.put(f"{API}/customers/ACC-2", json=CUSTOMER).status_code == 201
    alice_op.put(f"{API}/invoices/INV-1", json=invoice_body())
    moved = alice_op.put(f"{API}/invoices/INV-1", json=invoice_body(customer="ACC-2"))
    assert moved.status_code == 422 and "customer_external_id" in problem(moved)["errors"]
    theirs = alice_op.put(
        f"{API}/payments/P-1", json={**pay_body(100), "customer_external_id": "ACC-2"}
    )
    assert problem(theirs)["errors"] == {
        "invoice_external_id": ["No such invoice of this customer."]
    }
    same_number = alice_op.put(f"{API}/invoices/INV-2", json=invoice_body(customer="ACC-2"))
    assert problem(same_number)["errors"] == {"number": ["Another invoice has this number."]}
    # Bob (another demo customer) does not see alice's pushed invoice.
    with connection():
        invoice_id = Invoice.get(Invoice.external_id == "INV-1").id
    bob = signed_in(alice_op.app, "bob@example.com")
    assert bob.get(f"/api/v1/invoices/{invoice_id}").status_code == 404
    assert bob.get(f"/api/v1/invoices/{invoice_id}/pdf").status_code == 404


@pytest.mark.spec("INT-4")
def test_invoices_list_with_cursors_and_updated_since(alice_op):
    for n in range(3):
        body = invoice_body(number=f"OP-{n}")
        assert alice_op.put(f"{API}/invoices/INV-{n}", json=body).status_code == 201
    first = alice_op.get(f"{API}/invoices", params={"limit": 2}).json
    assert [i["external_id"] for i in first["items"]] == ["INV-0", "INV-1"]
    rest = alice_op.get(f"{API}/invoices", params={"limit": 2, "cursor": first["next"]}).json
    assert [i["external_id"] for i in rest["items"]] == ["INV-2"] and rest["next"] is None
    mark = utcnow()
    alice_op.put(f"{API}/invoices/INV-1", json=invoice_body(number="OP-1", status="overdue"))
    since = alice_op.get(f"{API}/invoices", params={"updated_since": mark.isoformat()}).json
    assert [i["external_id"] for i in since["items"]] == ["INV-1"]
    paths = Client(alice_op.app).get("/api/v1/openapi.json").json["paths"]
    for path in ("invoices", "invoices/{external_id}", "transactions/{external_id}"):
        assert f"/operator/{path}" in paths
    assert "/operator/payments/{external_id}" in paths


@pytest.mark.spec("INT-4")
def test_hostile_billing_input_is_refused_without_a_500(alice_op):
    huge = alice_op.put(f"{API}/invoices/INV-1", json=invoice_body(line(unit=10**12)))
    assert huge.status_code == 422
    assert "unit_amount" in problem(huge)["errors"]["lines"]["0"]
    many = invoice_body(*[line()] * 501)
    assert alice_op.put(f"{API}/invoices/INV-1", json=many).status_code == 422
    big_total = invoice_body(line(quantity=10**6, unit=10**6, tax=0))
    assert alice_op.put(f"{API}/invoices/INV-1", json=big_total).status_code == 422
    up, down = line(unit=10**8, tax=2 * 10**7), line(unit=-(10**8), rate=0, tax=0)
    by_rate = alice_op.put(f"{API}/invoices/INV-1", json=invoice_body(up, up, down, down))
    assert "lines" in problem(by_rate)["errors"]  # nets to 0, but 2e8 at 20%: no overflow
    floats = alice_op.put(f"{API}/payments/P-1", json=pay_body(12.5))
    assert floats.status_code == 422 and "amount" in problem(floats)["errors"]
    assert alice_op.put(f"{API}/payments/P-1", json=pay_body(0)).status_code == 422
    assert alice_op.put(f"{API}/payments/P-1", json=pay_body(-5)).status_code == 422
    cheque = alice_op.put(f"{API}/payments/P-1", json=pay_body(5, method="gold"))
    assert "method" in problem(cheque)["errors"]
    early = invoice_body(due_at="2026-11-01T00:00:00+00:00")
    assert "due_at" in problem(alice_op.put(f"{API}/invoices/INV-1", json=early))["errors"]
    odd = "Zoë 🚲 \u202e ‮ Ltd — 日本"
    made = alice_op.put(f"{API}/invoices/INV-ü-🚲", json=invoice_body(line(description=odd)))
    assert made.status_code == 201, made.text
    assert made.json["lines"][0]["description"] == odd
    run_tasks(alice_op.app)
    assert alice_op.get(f"{API}/invoices/INV-ü-🚲").json["pdf_ready"] is True
    unknown = alice_op.put(f"{API}/payments/P-9", json=pay_body(100, invoice="NOPE"))
    assert problem(unknown)["errors"] == {
        "invoice_external_id": ["No such invoice of this customer."]
    }
    assert alice_op.get(f"{API}/payments/NOPE").status_code == 404
    with connection():
        assert Payment.select().count() == 0


@pytest.mark.spec("INT-4")
def test_the_billing_routes_are_registered_only_with_billing_enabled(alice_op):
    """Billing cannot be switched off in this tree (the core implements its hooks), so the
    hook is asked directly with the set of enabled plugins it reads."""
    from types import SimpleNamespace

    from plugins.operator import register_routes

    def paths(enabled):
        app = SimpleNamespace(plugins=SimpleNamespace(enabled=set(enabled)))
        return {route.path for route in register_routes(app)}

    without = paths({"identity", "services"})
    assert "/api/v1/operator/customers" in without
    assert not [p for p in without if "invoices" in p or "payments" in p]
    assert "/api/v1/operator/payments/{external_id}" in paths({"identity", "billing"})


@pytest.mark.spec("INT-4")
def test_simultaneous_payments_move_money_once(alice_op):
    from test_money_concurrency import race

    alice_op.put(f"{API}/invoices/INV-1", json=invoice_body())
    same = race(alice_op.app, 4, lambda i: alice_op.put(f"{API}/payments/P-R", json=pay_body(1800)))
    assert sorted(a.status_code for a in same) == [200, 200, 200, 201], [a.text for a in same]
    others = race(
        alice_op.app, 3, lambda i: alice_op.put(f"{API}/payments/P-{i}", json=pay_body(1800))
    )
    assert [a.status_code for a in others] == [409] * 3  # nothing is owed any more
    with connection():
        assert Payment.select().where(Payment.provider == "offline").count() == 1
    assert balance() == 0 and len(events("payment.succeeded")) == 1
