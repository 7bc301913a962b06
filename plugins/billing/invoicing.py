"""Invoices and transactions: record charges and credits, issue invoices, mark them overdue.

Only staff, the payment flow and background jobs call these; no customer
route can create, edit or void an invoice or a transaction (LIM-3).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta

import peewee

from engine import db
from engine.audit import record_system
from engine.db import locked_transaction, lock_rows, utcnow
from engine.errors import invalid
from engine.i18n import N_
from engine.models import Customer
from engine.notify import notify_customer
from plugins.billing.models import Invoice, InvoiceLine, InvoiceTaxLine, Transaction

BILLABLE = ("charge", "credit")


def settings(app):
    return app.settings.plugin("billing")


def tax_of(amount: int, rate: int) -> int:
    """Tax on a net amount at ``rate`` basis points, rounded half away from zero (to the penny)."""
    tax = (abs(amount) * rate + 5000) // 10000
    return tax if amount >= 0 else -tax


def rate_label(app, rate: int) -> str:
    percent = f"{rate / 100:.2f}".rstrip("0").rstrip(".")
    return f"{settings(app).tax_name} {percent}%"


def write_tax_lines(app, invoice_id: int, by_rate: dict[int, list[int]]) -> None:
    """An invoice's tax summary: one line per rate, from ``{rate: [net, tax]}``."""
    InvoiceTaxLine.insert_many(
        [
            dict(
                invoice=invoice_id,
                name=rate_label(app, rate),
                rate=rate,
                taxable_amount=net,
                tax_amount=tax,
            )
            for rate, (net, tax) in sorted(by_rate.items())
        ]
    ).execute()


# -- transactions (BILL-4) ------------------------------------------------------


def record_transaction(
    app,
    customer_id: int,
    *,
    kind: str,
    description: str,
    amount: int,
    currency: str | None = None,
    tax_rate: int | None = None,
    occurred_at: datetime | None = None,
    service_id: int | None = None,
    reference: str | None = None,
) -> Transaction:
    """Add a charge (positive) or credit (negative) to a customer's account, not yet invoiced.

    With a ``reference``, recording the same thing twice returns the first row.
    """
    if kind not in BILLABLE:
        raise invalid({"kind": [N_("Must be one of: charge, credit.")]})
    if kind == "charge" and amount <= 0:
        raise invalid({"amount": [N_("A charge is a positive amount.")]})
    if kind == "credit" and amount >= 0:
        raise invalid({"amount": [N_("A credit is a negative amount.")]})
    if reference:
        found = Transaction.get_or_none(Transaction.reference == reference)
        if found is not None:
            return found
    rate = settings(app).tax_rate if tax_rate is None else tax_rate
    values = dict(
        customer=customer_id,
        kind=kind,
        description=description,
        amount=amount,
        tax_rate=rate,
        tax=tax_of(amount, rate),
        currency=(currency or app.settings.currency).upper(),
        occurred_at=occurred_at or utcnow(),
        service=service_id,
        reference=reference,
    )
    try:
        with db.database.atomic():
            return Transaction.create(**values)
    except peewee.IntegrityError:
        if reference:  # recorded concurrently by someone else: the same thing, once
            found = Transaction.get_or_none(Transaction.reference == reference)
            if found is not None:
                return found
        raise


def charge_renewal(app, service, previous_period_start) -> None:
    """A service entered a new period: its fee becomes an uninvoiced charge (once per period)."""
    if not service.monthly_fee:
        return
    start = service.period_start
    record_transaction(
        app,
        service.customer_id,
        kind="charge",
        amount=service.monthly_fee,
        currency=service.currency,
        service_id=service.id,
        occurred_at=start,
        description=f"{service.name} — {start:%d %b %Y}",
        reference=f"renewal:{service.id}:{start:%Y%m%d%H%M}",
    )


# -- issuing (BILL-1) -------------------------------------------------------------


def issue_invoice(
    app,
    customer_id: int,
    *,
    currency: str | None = None,
    transaction_ids: list[int] | None = None,
    due_days: int | None = None,
    issued_at: datetime | None = None,
    notes: str = "",
    staff_id: int | None = None,
    notify: bool = True,
) -> Invoice:
    """Gather the customer's uninvoiced charges and credits into a new invoice.

    Totals, lines and tax lines are fixed now; the PDF is rendered once, after
    commit, by a background task; the customer is told the invoice is ready
    (``notify=False`` is for importing history).
    """
    conf = settings(app)
    currency = (currency or app.settings.currency).upper()
    issued_at = issued_at or utcnow()
    due_days = conf.payment_terms_days if due_days is None else due_days
    with locked_transaction():
        Customer.get_by_id(customer_id)
        query = (
            Transaction.select()
            .where(
                (Transaction.customer == customer_id)
                & Transaction.invoice.is_null()
                & Transaction.kind.in_(BILLABLE)
                & (Transaction.currency == currency)
            )
            .order_by(Transaction.occurred_at, Transaction.id)
        )
        if transaction_ids:
            query = query.where(Transaction.id.in_(transaction_ids))
        rows = list(lock_rows(query))
        if transaction_ids and len(rows) != len(set(transaction_ids)):
            missing = sorted(set(transaction_ids) - {t.id for t in rows})
            raise invalid(
                {
                    "transaction_ids": [
                        N_(
                            "Not uninvoiced %(currency)s transactions of this customer: %(ids)s.",
                            currency=currency,
                            ids=", ".join(map(str, missing)),
                        )
                    ]
                }
            )
        if not rows:
            raise invalid(
                {
                    "transaction_ids": [
                        N_(
                            "This customer has no uninvoiced %(currency)s charges or credits.",
                            currency=currency,
                        )
                    ]
                },
                title=N_("Nothing to invoice"),
            )
        invoice = _create(
            app, customer_id, rows, currency, issued_at, issued_at + timedelta(days=due_days), notes
        )
        from plugins.billing import tasks as billing_tasks  # lazily: it imports this module

        app.tasks.enqueue(billing_tasks.render_invoice_pdf, invoice.id)
        if notify:
            notify_customer(
                app,
                customer_id,
                "invoice_ready",
                f"invoice-ready:{invoice.id}",
                "billing",
                data=invoice_notice_data(app, invoice),
            )
        record_system(
            app,
            "invoice.issued",
            f"invoice:{invoice.id}",
            {"number": invoice.number, "total": invoice.total, "currency": currency},
            customer_id=customer_id,
            staff_id=staff_id,
        )
        app.plugins.hook.invoice_issued(app=app, invoice=invoice)
    return invoice


def _create(app, customer_id, rows, currency, issued_at, due_at, notes) -> Invoice:
    subtotal = sum(t.amount for t in rows)
    by_rate: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for t in rows:
        by_rate[t.tax_rate][0] += t.amount
        by_rate[t.tax_rate][1] += t.tax
    tax_total = sum(tax for _, tax in by_rate.values())
    total = subtotal + tax_total
    invoice = Invoice.create(
        customer=customer_id,
        number=f"pending-{uuid.uuid4().hex}",
        issued_at=issued_at,
        due_at=due_at,
        currency=currency,
        subtotal=subtotal,
        tax_total=tax_total,
        total=total,
        period_start=min(t.occurred_at for t in rows),
        period_end=max(t.occurred_at for t in rows),
        status="paid" if total <= 0 else "unpaid",
        paid_at=issued_at if total <= 0 else None,
        notes=notes,
    )
    # The number follows the row id: unique without a shared counter to contend on.
    invoice.number = f"{settings(app).invoice_prefix}{invoice.id:06d}"
    invoice.save(only=[Invoice.number])
    InvoiceLine.insert_many(
        [
            dict(
                invoice=invoice.id,
                position=i,
                description=t.description,
                quantity=1,
                unit_amount=t.amount,
                amount=t.amount,
                tax_rate=t.tax_rate,
                tax_amount=t.tax,
                occurred_at=t.occurred_at,
            )
            for i, t in enumerate(rows, start=1)
        ]
    ).execute()
    write_tax_lines(app, invoice.id, by_rate)
    (
        Transaction.update(invoice=invoice.id)
        .where(Transaction.id.in_([t.id for t in rows]))
        .execute()
    )
    return invoice


def invoice_notice_data(app, invoice: Invoice) -> dict:
    return {
        "number": invoice.number,
        "total": invoice.total,
        "currency": invoice.currency,
        "due_at": invoice.due_at.isoformat(),
        "url": app.url(f"/billing/invoices/{invoice.id}"),
    }


# -- payments recorded by staff, and overdue ------------------------------------------


def apply_payment(invoice: Invoice, amount: int, when: datetime) -> None:
    """Add ``amount`` to what was paid (the caller holds the invoice's row lock)."""
    invoice.amount_paid += amount
    fields = [Invoice.amount_paid]
    if invoice.amount_paid >= invoice.total and invoice.status != "paid":
        invoice.status, invoice.paid_at = "paid", when
        fields += [Invoice.status, Invoice.paid_at]
    invoice.save(only=fields)


def mark_overdue(app, now: datetime | None = None) -> int:
    """Unpaid invoices past their due date become overdue; returns how many changed."""
    now = now or utcnow()
    with db.database.atomic():
        late = list(
            Invoice.select(Invoice.id, Invoice.customer, Invoice.number).where(
                (Invoice.status == "unpaid") & (Invoice.due_at < now)
            )
        )
        if not late:
            return 0
        changed = (
            Invoice.update(status="overdue", updated_at=now)  # seen by updated_since syncs
            .where(Invoice.id.in_([i.id for i in late]) & (Invoice.status == "unpaid"))
            .execute()
        )
        for inv in late:
            record_system(
                app,
                "invoice.overdue",
                f"invoice:{inv.id}",
                {"number": inv.number},
                customer_id=inv.customer_id,
            )
    return changed
