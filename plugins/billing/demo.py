"""Demo billing: a year of monthly invoices per demo customer, paid by their saved sandbox cards.

Alice's latest invoice is unpaid (not yet due); Bob has an unpaid one and an
overdue one, and a card that expires at the end of this month. This month's
fees are recorded but not invoiced yet.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from engine.db import utcnow
from engine.payments import ChargeRequest
from plugins.billing import invoicing, payments
from plugins.billing.models import Invoice, Payment, Transaction

MONTHS = 12


def _month_start(now: datetime, back: int) -> datetime:
    year, month = now.year, now.month - back
    while month < 1:
        year, month = year - 1, month + 12
    return datetime(year, month, 1, tzinfo=timezone.utc)


def _card(app, customer_id: int, number: str, month: int, year: int, default: bool):
    from plugins.sandbox.public import token_for

    provider, setup = payments.start_setup(app, customer_id, "sandbox")
    return payments.save_card(
        app,
        None,
        customer_id,
        setup.ref,
        token_for(number, month, year),
        make_default=default,
        provider_id="sandbox",
    )


def _fees(demo: dict, customer, when: datetime) -> list[tuple[str, int, int | None]]:
    """(description, net amount, service id) for each paid service the customer had then."""
    services = [
        s
        for s in demo.get("services", {}).values()
        if s.customer_id == customer.id
        and s.monthly_fee > 0
        and s.created_at <= when
        and s.status != "expired"
    ]
    if not services:
        return [("Monthly plan", 2000, None)]
    return [(s.name, s.monthly_fee, s.id) for s in sorted(services, key=lambda s: s.id)]


def _pay_in_the_past(app, invoice: Invoice, card, paid_at: datetime) -> None:
    """A real sandbox charge, recorded with its historical date (no emails for history)."""
    provider = app.providers["sandbox"]
    key = f"demo-{uuid.uuid4().hex}"
    result = provider.charge(
        app,
        ChargeRequest(
            customer_ref=payments.customer_ref(app, provider, invoice.customer_id),
            method_ref=card.ref,
            amount=invoice.amount_due,
            currency=invoice.currency,
            idempotency_key=key,
            metadata={"portico_invoice": str(invoice.id)},
        ),
    )
    payment = Payment.create(
        customer=invoice.customer_id,
        invoice=invoice.id,
        amount=invoice.amount_due,
        currency=invoice.currency,
        provider="sandbox",
        provider_ref=result.ref,
        method=card.id,
        method_label=card.label,
        status="succeeded",
        attempt_key=key,
        via="auto",
        created_at=paid_at,
        updated_at=paid_at,
        succeeded_at=paid_at,
    )
    Transaction.create(
        customer=invoice.customer_id,
        kind="payment",
        occurred_at=paid_at,
        description=f"Card payment — {card.label}",
        amount=-payment.amount,
        currency=invoice.currency,
        invoice=invoice.id,
        payment=payment.id,
        reference=f"payment:{payment.id}",
    )
    invoicing.apply_payment(invoice, payment.amount, paid_at)


def seed(app, demo: dict) -> None:
    if "sandbox" not in app.providers:
        return
    now = utcnow().replace(microsecond=0)
    alice, bob = demo["customers"]["alice"], demo["customers"]["bob"]
    cards = {
        "alice": _card(app, alice.id, "4242424242424242", 12, now.year + 3, True),
        # Valid to the end of this month: the "card expiring" alert shows.
        "bob": _card(app, bob.id, "5555555555554444", now.month, now.year, True),
    }
    _card(app, bob.id, "4242424242424242", 6, now.year + 2, False)
    extras = {  # (customer, months back): a one-off line
        ("alice", 5): ("Goodwill credit — broadband outage", -500),
        ("bob", 8): ("Roaming — France, 3 days", 1250),
        ("bob", 3): ("Static IP address", 500),
    }
    invoices: dict[str, list[Invoice]] = {"alice": [], "bob": []}
    for name, customer in (("alice", alice), ("bob", bob)):
        for back in range(MONTHS, 0, -1):
            start = _month_start(now, back)
            for description, amount, service_id in _fees(demo, customer, start):
                invoicing.record_transaction(
                    app,
                    customer.id,
                    kind="charge",
                    amount=amount,
                    service_id=service_id,
                    description=f"{description} — {start:%B %Y}",
                    occurred_at=start,
                    reference=f"demo:{customer.id}:{service_id}:{start:%Y%m}",
                )
            if (name, back) in extras:
                text, amount = extras[(name, back)]
                invoicing.record_transaction(
                    app,
                    customer.id,
                    kind="credit" if amount < 0 else "charge",
                    amount=amount,
                    description=text,
                    occurred_at=start + timedelta(days=12),
                )
            issued = _month_start(now, back - 1)
            due_days = 14 if back > 1 else max(10, (now - issued).days + 10)
            invoices[name].append(
                invoicing.issue_invoice(
                    app, customer.id, issued_at=issued, due_days=due_days, notify=False
                )
            )
        for description, amount, service_id in _fees(demo, customer, _month_start(now, 0)):
            invoicing.record_transaction(
                app,
                customer.id,
                kind="charge",
                amount=amount,
                service_id=service_id,
                description=f"{description} — {now:%B %Y}",
                occurred_at=_month_start(now, 0),
            )
    # Everything is paid a few days after issue, except: Alice's latest (not yet due),
    # Bob's latest (not yet due) and the one before it (overdue).
    unpaid = {("alice", -1), ("bob", -1), ("bob", -2)}
    for name, rows in invoices.items():
        for position, invoice in enumerate(rows):
            if (name, position - len(rows)) in unpaid:
                continue
            _pay_in_the_past(
                app,
                Invoice.get_by_id(invoice.id),
                cards[name],
                invoice.issued_at + timedelta(days=3),
            )
    invoicing.mark_overdue(app, now)  # Bob's last-but-one was due mid last month
    demo["invoices"] = invoices
    demo["payment_methods"] = cards
