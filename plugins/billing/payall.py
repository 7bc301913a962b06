"""Paying every unpaid invoice at once (BILL-8): which invoices, and one payment spread over them.

One ``Payment`` (``purpose`` "invoices", no ``invoice``) takes the sum in one charge, through
the same claim / charge / record steps as paying one invoice (``payments.pay_invoices``). Its
``PaymentAllocation`` rows fix the set, and what each invoice owed, when it is claimed; while
it is in flight no other payment of any of them can start (nor it while one of them has one).

When it succeeds, once: each invoice receives what it owed then, or what it still owes if it
was paid (in part) another way meanwhile — a staff-recorded bank transfer, an operator's
pushed payment; each gets its own payment transaction and ``invoice.paid`` event. Whatever is
left over becomes account credit: an uninvoiced credit transaction of the payment, which the
next invoice nets. A decline writes nothing to any invoice.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from engine.db import lock_rows
from engine.events import emit
from plugins.billing.invoicing import apply_payment
from plugins.billing.models import OPEN_PAYMENT, Invoice, Payment, PaymentAllocation, Transaction

#: ``Payment.purpose`` of a payment of several invoices.
PAY_ALL = "invoices"
OPEN_INVOICE = ("unpaid", "overdue")


def payable(customer_id: int) -> dict[str, list[Invoice]]:
    """The customer's invoices that still owe something, by currency, oldest due first."""
    rows = (
        Invoice.select()
        .where(
            (Invoice.customer == customer_id)
            & Invoice.status.in_(OPEN_INVOICE)
            & (Invoice.total > Invoice.amount_paid)
        )
        .order_by(Invoice.due_at, Invoice.id)
    )
    found: dict[str, list[Invoice]] = defaultdict(list)
    for invoice in rows:
        found[invoice.currency].append(invoice)
    return dict(found)


def open_payment_of(invoice_ids: list[int]) -> Payment | None:
    """A payment in flight of any of these invoices: of one of them, or of several at once."""
    single = (
        Payment.select()
        .where(Payment.invoice.in_(invoice_ids) & Payment.status.in_(OPEN_PAYMENT))
        .first()
    )
    if single is not None:
        return single
    return (
        Payment.select()
        .join(PaymentAllocation)
        .where(PaymentAllocation.invoice.in_(invoice_ids) & Payment.status.in_(OPEN_PAYMENT))
        .first()
    )


def invoice_ids(payment: Payment) -> list[int]:
    """The invoices a payment pays: its invoice, or the ones it was allocated to."""
    if payment.purpose != PAY_ALL:
        return [payment.invoice_id] if payment.invoice_id else []
    return [
        invoice_id
        for (invoice_id,) in PaymentAllocation.select(PaymentAllocation.invoice)
        .where(PaymentAllocation.payment == payment.id)
        .order_by(PaymentAllocation.invoice)
        .tuples()
    ]


def payments_of(invoice: Invoice) -> list[Payment]:
    """The succeeded payments of an invoice, oldest first, each with ``share``: what it paid of
    this invoice (all of it, or its part of a payment of several)."""
    shares = dict(
        PaymentAllocation.select(PaymentAllocation.payment, PaymentAllocation.applied)
        .where(PaymentAllocation.invoice == invoice.id)
        .tuples()
    )
    found = list(
        Payment.select()
        .where(
            ((Payment.invoice == invoice.id) | Payment.id.in_(list(shares)))
            & (Payment.status == "succeeded")
        )
        .order_by(Payment.id)
    )
    for payment in found:
        payment.share = shares.get(payment.id, payment.amount)
    return found


def allocate(payment: Payment, invoices: list[Invoice]) -> None:
    """Fix the set a new payment pays, and what each owes now (inside its claim)."""
    PaymentAllocation.insert_many(
        [dict(payment=payment.id, invoice=i.id, amount=i.amount_due, applied=0) for i in invoices]
    ).execute()


def emit_invoice_paid(app, invoice: Invoice, payment: Payment) -> None:
    emit(
        app,
        "invoice.paid",
        {
            "invoice_id": invoice.id,
            "invoice_external_id": invoice.external_id,
            "number": invoice.number,
            "total": invoice.total,
            "currency": invoice.currency,
            "payment_id": payment.id,
            "customer_id": payment.customer_id,
        },
        customer_id=payment.customer_id,
    )


def apply(app, payment: Payment, now: datetime, description: str) -> list[Invoice]:
    """Spread a succeeded payment over its invoices (inside the transaction that records it).

    Returns the invoices, in number order. The caller holds the payment's row lock and
    has checked that it was not recorded before.
    """
    allocations = list(
        PaymentAllocation.select()
        .where(PaymentAllocation.payment == payment.id)
        .order_by(PaymentAllocation.invoice)
    )
    ids = [a.invoice_id for a in allocations]
    # In id order, like every claim of them: two transactions never wait on each other.
    invoices = {
        i.id: i for i in lock_rows(Invoice.select().where(Invoice.id.in_(ids)).order_by(Invoice.id))
    }
    applied_total = 0
    for allocation in allocations:
        invoice = invoices[allocation.invoice_id]
        share = min(allocation.amount, invoice.amount_due)
        if share > 0:
            was = invoice.status
            apply_payment(invoice, share, now)
            Transaction.create(
                customer=payment.customer_id,
                kind="payment",
                occurred_at=now,
                description=description,
                amount=-share,
                currency=payment.currency,
                invoice=invoice.id,
                payment=payment.id,
                reference=f"payment:{payment.id}:{invoice.id}",
            )
            if invoice.status == "paid" and was != "paid":
                emit_invoice_paid(app, invoice, payment)
        allocation.applied = share
        allocation.save(only=[PaymentAllocation.applied])
        applied_total += share
    excess = payment.amount - applied_total
    if excess > 0:
        # Paid another way meanwhile: the money is the customer's, netted by the next invoice.
        Transaction.create(
            customer=payment.customer_id,
            kind="credit",
            occurred_at=now,
            description=f"Account credit — overpayment ({payment.method_label or payment.provider})",
            amount=-excess,
            tax_rate=0,
            tax=0,
            currency=payment.currency,
            payment=payment.id,
            reference=f"overpaid:{payment.id}",
        )
    return [invoices[i] for i in ids]
