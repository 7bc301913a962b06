"""Invoices, transactions and offline payments pushed by the operator's billing system (INT-4).

Called by the operator API (and anything else feeding Portico from the operator's systems,
a bulk import) with validated values, each call one transaction that writes the rows, their
audit events and what follows (the PDF's render, the customer's notice) or nothing. Each
object is keyed by the operator's ``external_id``: the same values again change nothing.

- A pushed invoice is rendered and stored exactly as Portico's own (``documents``); its
  lines are also the account's charges and credits (one transaction per line, invoiced to
  it), so the ledger nets to zero once it is paid. Its amounts can change only while
  nothing is paid (409 after); a change is a new revision with a new PDF.
- A pushed transaction is a line of the account not on an invoice (``adjustment`` is kept as
  a charge or a credit by its sign). It cannot change once invoiced.
- An offline payment moves money once: it goes through the card payments' success step
  (``payments._succeed``: the invoice's ``amount_paid``, the payment transaction, the
  notice), never for an invoice that owes nothing or has a card payment in flight (409),
  and never changes once recorded (409). More than the invoice owes is recorded in full:
  the invoice is paid and the surplus is a credit on the account.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import peewee

from engine import api, audit
from engine.db import lock_rows, locked_transaction, utcnow
from engine.errors import Problem, invalid
from engine.i18n import N_
from engine.notify import notify_customer
from engine.payments import SUCCEEDED, ChargeResult
from plugins.billing import payments
from plugins.billing.invoicing import invoice_notice_data, tax_of, write_tax_lines
from plugins.billing.models import (
    OPEN_PAYMENT,
    Invoice,
    InvoiceLine,
    InvoiceTaxLine,
    Payment,
    Transaction,
)

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
#: The largest amount (minor units) of a line or a sum by tax rate (as of any amount sent).
MAX_AMOUNT = api.MAX_AMOUNT
PAYMENT_METHODS = {
    "bank_transfer": N_("Bank transfer"),
    "cash": N_("Cash"),
    "cheque": N_("Cheque"),
    "direct_debit": N_("Direct debit"),
    "other": N_("Other"),
}
#: What changes an invoice's document (a new revision and PDF); the first four are amounts.
AMOUNTS = ("currency", "subtotal", "tax_total", "total")
DOCUMENT = (*AMOUNTS, "number", "issued_at", "due_at", "period_start", "period_end", "notes")
LINE_FIELDS = ("description", "quantity", "unit_amount", "amount", "tax_rate", "tax_amount")


@dataclass
class Pushed:
    row: Any
    change: str  # created, updated or unchanged


def _once(kind: str, work) -> Pushed:
    """``work()`` in one locked transaction; a concurrent create of the same external id (a
    unique index says so) makes it run once more, and then it finds the row."""
    for attempt in range(2):
        try:
            with locked_transaction():
                return work()
        except peewee.IntegrityError:
            if attempt:
                raise Problem(
                    409,
                    N_("This %(kind)s changed while it was being saved", kind=kind),
                    N_("Send the request again."),
                    type="conflict",
                ) from None
    raise AssertionError("unreachable")


def _other_customer() -> Problem:
    return invalid(
        {
            "customer_external_id": [
                N_("This belongs to another customer; it cannot move. Give it a new external id.")
            ]
        }
    )


# -- invoices -------------------------------------------------------------------------------


def check_invoice(values: dict) -> list[dict]:
    """The invoice's lines with their net amounts; 422 unless every total adds up."""
    errors: dict[str, list[str]] = {}
    lines = []
    for i, line in enumerate(values["lines"]):
        amount = line["quantity"] * line["unit_amount"]
        if "amount" in line and line["amount"] != amount:
            errors[f"lines.{i}.amount"] = [
                N_("Must be quantity × unit_amount (%(amount)s).", amount=amount)
            ]
        if abs(amount) > MAX_AMOUNT:
            errors[f"lines.{i}.amount"] = [N_("At most %(amount)s either way.", amount=MAX_AMOUNT)]
        if line["tax_amount"] and (line["tax_amount"] > 0) != (amount > 0):
            errors[f"lines.{i}.tax_amount"] = [N_("Must have the sign of the line's amount.")]
        lines.append({**line, "amount": amount})
    by_rate: dict[int, int] = defaultdict(int)
    for line in lines:
        by_rate[line["tax_rate"]] += line["amount"]
    if any(abs(net) > MAX_AMOUNT for net in by_rate.values()):
        errors["lines"] = [
            N_("The lines of one tax rate add up to more than %(amount)s.", amount=MAX_AMOUNT)
        ]
    subtotal = sum(line["amount"] for line in lines)
    tax_total = sum(line["tax_amount"] for line in lines)
    for name, expected in (
        ("subtotal", subtotal),
        ("tax_total", tax_total),
        ("total", values["subtotal"] + values["tax_total"]),
    ):
        if values[name] != expected:
            sums = {
                "subtotal": N_("Must be the sum of the lines' amounts (%(sum)s).", sum=expected),
                "tax_total": N_("Must be the sum of the lines' tax (%(sum)s).", sum=expected),
            }
            errors.setdefault(name, []).append(
                sums.get(name)
                or N_("Must be the sum of subtotal + tax_total (%(sum)s).", sum=expected)
            )
    if errors:
        raise invalid(errors, title=N_("The invoice's totals do not add up"))
    return lines


def upsert_invoice(ctx, external_id: str, customer_id: int, values: dict) -> Pushed:
    """``values``: number, issued_at, due_at, period_start, period_end, currency, lines
    (description, quantity, unit_amount, optional amount, tax_rate, tax_amount), subtotal,
    tax_total, total, optional status (unpaid, overdue; paid only when nothing is owed),
    notes, optional notify (tell the customer of a new invoice; default True)."""
    values = dict(values)
    notify = values.pop("notify", True)
    status = values.pop("status", None)
    lines = check_invoice(values)
    values.pop("lines")
    values["currency"] = values["currency"].upper()
    for name, default in (("notes", ""), ("period_start", None), ("period_end", None)):
        values.setdefault(name, default)

    def work() -> Pushed:
        row = lock_rows(Invoice.select().where(Invoice.external_id == external_id)).first()
        if row is not None and row.customer_id != customer_id:
            raise _other_customer()
        taken = Invoice.select().where(Invoice.number == values["number"])
        if row is not None:
            taken = taken.where(Invoice.id != row.id)
        if taken.exists():
            raise invalid({"number": [N_("Another invoice has this number.")]})
        if row is None:
            return _create_invoice(ctx, external_id, customer_id, values, lines, status, notify)
        return _update_invoice(ctx, row, values, lines, status)

    return _once("invoice", work)


def _create_invoice(ctx, external_id, customer_id, values, lines, status, notify) -> Pushed:
    app = ctx.app
    owed = values["total"] > 0
    if status == "paid" and owed:
        raise _paid_needs_payment()
    row = Invoice.create(
        customer=customer_id,
        external_id=external_id,
        status=(status or "unpaid") if owed else "paid",
        paid_at=None if owed else values["issued_at"],
        **values,
    )
    _write_lines(app, row, lines)
    _render_later(app, row)
    if notify:
        notify_customer(
            app,
            customer_id,
            "invoice_ready",
            f"invoice-ready:{row.id}",
            "billing",
            data=invoice_notice_data(app, row),
        )
    audit.record(
        ctx,
        "invoice.created",
        f"invoice:{row.id}",
        {"external_id": external_id, "number": row.number, "total": row.total},
        customer_id=customer_id,
    )
    app.plugins.hook.invoice_issued(app=app, invoice=row)
    return Pushed(row, CREATED)


def _update_invoice(ctx, row: Invoice, values, lines, status) -> Pushed:
    changed = [k for k in DOCUMENT if getattr(row, k) != values[k]]
    if _lines_of(row) != [{k: line[k] for k in LINE_FIELDS} for line in lines]:
        changed.append("lines")
    if set(changed) & {*AMOUNTS, "lines"} and (row.amount_paid or _has_payments(row)):
        raise Problem(
            409,
            N_("This invoice has payments: its amounts cannot change"),
            N_("Issue a credit note as a new invoice, or push a credit transaction."),
            type="invoice-paid",
        )
    if status is not None and status != row.status:
        if status == "paid" and row.amount_due > 0:
            raise _paid_needs_payment()
        if row.status == "paid" and row.amount_due <= 0:
            raise invalid({"status": [N_("This invoice is paid; it cannot owe again.")]})
        row.status = status
        changed.append("status")
    if not changed:
        return Pushed(row, UNCHANGED)
    if set(changed) - {"status"}:  # a new document: new lines, a new revision, a new PDF
        for name in DOCUMENT:
            setattr(row, name, values[name])
        row.revision += 1
        row.pdf_path, row.pdf_sha256, row.pdf_rendered_at = "", "", None
        InvoiceLine.delete().where(InvoiceLine.invoice == row.id).execute()
        InvoiceTaxLine.delete().where(InvoiceTaxLine.invoice == row.id).execute()
        Transaction.delete().where(
            (Transaction.invoice == row.id)
            & Transaction.reference.startswith(f"invoice-line:{row.id}:")
        ).execute()
        _write_lines(ctx.app, row, lines)
        _render_later(ctx.app, row)
    row.save()
    audit.record(
        ctx,
        "invoice.updated",
        f"invoice:{row.id}",
        {"external_id": row.external_id, "fields": sorted(changed), "revision": row.revision},
        customer_id=row.customer_id,
    )
    return Pushed(row, UPDATED)


def _paid_needs_payment() -> Problem:
    return invalid(
        {
            "status": [
                N_(
                    "An invoice that owes money is paid by a payment: record it with "
                    "PUT /api/v1/operator/payments/{external_id}."
                )
            ]
        }
    )


def _has_payments(row: Invoice) -> bool:
    return (
        Payment.select()
        .where((Payment.invoice == row.id) & Payment.status.in_(("succeeded", *OPEN_PAYMENT)))
        .exists()
    )


def _lines_of(row: Invoice) -> list[dict]:
    query = InvoiceLine.select().where(InvoiceLine.invoice == row.id).order_by(InvoiceLine.position)
    return [{k: getattr(line, k) for k in LINE_FIELDS} for line in query]


def _line_ref(row: Invoice, position) -> str:
    return f"invoice-line:{row.id}:{row.revision}:{position}"


def _write_lines(app, row: Invoice, lines: list[dict]) -> None:
    """The invoice's lines, tax lines by rate, and its lines as the account's transactions."""
    by_rate: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for line in lines:
        by_rate[line["tax_rate"]][0] += line["amount"]
        by_rate[line["tax_rate"]][1] += line["tax_amount"]
    InvoiceLine.insert_many(
        [
            dict(invoice=row.id, position=i, occurred_at=row.issued_at, **line)
            for i, line in enumerate(lines, start=1)
        ]
    ).execute()
    write_tax_lines(app, row.id, by_rate)
    ledger = [
        dict(
            customer=row.customer_id,
            kind="charge" if line["amount"] + line["tax_amount"] > 0 else "credit",
            description=line["description"],
            amount=line["amount"],
            tax_rate=line["tax_rate"],
            tax=line["tax_amount"],
            currency=row.currency,
            occurred_at=row.issued_at,
            invoice=row.id,
            reference=_line_ref(row, i),
        )
        for i, line in enumerate(lines, start=1)
        if line["amount"] or line["tax_amount"]
    ]
    if ledger:
        Transaction.insert_many(ledger).execute()


def _render_later(app, row: Invoice) -> None:
    from plugins.billing import tasks as billing_tasks  # lazily: it imports the documents

    app.tasks.enqueue(billing_tasks.render_invoice_pdf, row.id)


# -- transactions -----------------------------------------------------------------------------


def upsert_transaction(ctx, external_id: str, customer_id: int, values: dict) -> Pushed:
    """``values``: kind (charge > 0, credit < 0, adjustment either), description, amount
    (net, signed), currency, optional tax_rate (basis points; default the billing
    setting), optional tax (default computed), occurred_at (default now)."""
    app = ctx.app
    values = dict(values)
    kind, amount = values.pop("kind"), values["amount"]
    if amount == 0 or (kind == "charge" and amount < 0) or (kind == "credit" and amount > 0):
        raise invalid(
            {"amount": [N_("A charge is positive, a credit negative, an adjustment not zero.")]}
        )
    rate = values.get("tax_rate")
    if rate is None:
        rate = app.settings.plugin("billing").tax_rate
    tax = values.get("tax")
    if tax is None:
        tax = tax_of(amount, rate)
    if tax and (tax > 0) != (amount > 0):
        raise invalid({"tax": [N_("Must have the sign of the amount.")]})
    columns = dict(
        customer=customer_id,
        kind="charge" if amount > 0 else "credit",
        description=values["description"],
        amount=amount,
        tax_rate=rate,
        tax=tax,
        currency=values["currency"].upper(),
    )
    if values.get("occurred_at") is not None:
        columns["occurred_at"] = values["occurred_at"]

    def work() -> Pushed:
        row = lock_rows(Transaction.select().where(Transaction.external_id == external_id)).first()
        if row is None:
            row = Transaction.create(external_id=external_id, **columns)
            audit.record(
                ctx,
                "transaction.created",
                f"transaction:{row.id}",
                {"external_id": external_id, "amount": row.amount, "currency": row.currency},
                customer_id=customer_id,
            )
            return Pushed(row, CREATED)
        if row.customer_id != customer_id:
            raise _other_customer()
        changed = sorted(k for k, v in columns.items() if row.__data__.get(k) != v)
        if not changed:
            return Pushed(row, UNCHANGED)
        if row.invoice_id and set(changed) - {"description"}:
            raise Problem(
                409,
                N_("This transaction is on an invoice: it cannot change"),
                N_("Push a new credit or adjustment with a new external id."),
                type="transaction-invoiced",
            )
        for name in changed:
            setattr(row, name, columns[name])
        row.save()
        audit.record(
            ctx,
            "transaction.updated",
            f"transaction:{row.id}",
            {"external_id": external_id, "fields": changed},
            customer_id=customer_id,
        )
        return Pushed(row, UPDATED)

    return _once("transaction", work)


# -- offline payments -------------------------------------------------------------------------


def record_payment(ctx, external_id: str, customer_id: int, values: dict) -> Pushed:
    """``values``: amount (> 0), currency, method (``PAYMENT_METHODS``), optional
    invoice_external_id (None: a payment on account), reference, received_at (default now).

    Money moves once: the same external id again is ``unchanged``, with other values 409.
    """
    app = ctx.app
    amount, currency = values["amount"], values["currency"].upper()
    invoice_external_id = values.get("invoice_external_id")
    received = values.get("received_at") or utcnow()

    def work() -> Pushed:
        invoice = None
        if invoice_external_id is not None:
            # The invoice's lock first: a concurrent request for the same payment waits here,
            # then finds the payment recorded (and is "unchanged", not "already paid").
            invoice = lock_rows(
                Invoice.select().where(Invoice.external_id == invoice_external_id)
            ).first()
            if invoice is None or invoice.customer_id != customer_id:
                raise invalid({"invoice_external_id": [N_("No such invoice of this customer.")]})
        row = lock_rows(Payment.select().where(Payment.external_id == external_id)).first()
        if row is not None:
            return _same_payment(row, customer_id, values, currency)
        if invoice is not None:
            if invoice.currency != currency:
                raise invalid(
                    {"currency": [N_("The invoice is in %(currency)s.", currency=invoice.currency)]}
                )
            _payable(invoice)
        row = Payment.create(
            customer=customer_id,
            invoice=invoice.id if invoice else None,
            purpose="invoice" if invoice else "account",
            amount=amount,
            currency=currency,
            provider="offline",
            method_label=PAYMENT_METHODS[values["method"]],
            attempt_key=f"operator-{uuid.uuid4().hex}",
            via="operator",
            reference=values.get("reference", ""),
            external_id=external_id,
        )
        # The card payments' one success step (nested in this transaction): the invoice's
        # amount paid and status, the payment transaction, the notice, payment_succeeded.
        payments._succeed(app, row.id, ChargeResult(status=SUCCEEDED, ref=row.reference))
        Payment.update(succeeded_at=received).where(Payment.id == row.id).execute()
        Transaction.update(occurred_at=received).where(
            Transaction.reference == f"payment:{row.id}"
        ).execute()
        audit.record(
            ctx,
            "payment.recorded",
            f"payment:{row.id}",
            {
                "external_id": external_id,
                "amount": amount,
                "currency": currency,
                "invoice": invoice.number if invoice else None,
                "surplus": max(amount - invoice.amount_due, 0) if invoice else amount,
            },
            customer_id=customer_id,
        )
        return Pushed(Payment.get_by_id(row.id), CREATED)

    return _once("payment", work)


def _payable(invoice: Invoice) -> None:
    if invoice.amount_due <= 0:
        raise Problem(
            409,
            N_("This invoice is already paid"),
            N_(
                "Nothing is owed on it (perhaps paid by card): record the money against the "
                "account instead (no invoice_external_id), where it is a credit."
            ),
            type="invoice-paid",
        )
    in_flight = Payment.select().where(
        (Payment.invoice == invoice.id) & Payment.status.in_(OPEN_PAYMENT)
    )
    if in_flight.exists():
        raise Problem(
            409,
            N_("A card payment of this invoice is in progress"),
            N_("Send the request again in a few minutes, once it has settled."),
            type="payment-in-progress",
        )


def _same_payment(row: Payment, customer_id: int, values: dict, currency: str) -> Pushed:
    if row.customer_id != customer_id:
        raise _other_customer()
    invoice_external_id = row.invoice.external_id if row.invoice_id else None
    same = (
        row.amount == values["amount"]
        and row.currency == currency
        and invoice_external_id == values.get("invoice_external_id")
        and row.method_label == PAYMENT_METHODS[values["method"]]
    )
    if not same:
        raise Problem(
            409,
            N_("This payment is recorded: it cannot change"),
            N_("Money moves once. Correct it with a transaction (a charge or an adjustment)."),
            type="payment-recorded",
        )
    return Pushed(row, UNCHANGED)
