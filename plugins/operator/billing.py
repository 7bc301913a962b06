"""Invoices, transactions and offline payments from the operator's billing system (INT-4).

``/api/v1/operator/invoices``, ``/transactions/{external_id}`` and ``/payments/{external_id}``,
registered only while the billing plugin is enabled. The rules live in billing
(``plugins.billing.public.pushed``); here are the shapes and the routes, which reuse the
other operator objects' resources (``resources._pair``) and the ``billing:write`` scope.
"""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from engine.api import MAX_AMOUNT, Amount, AwareDateTime, page_schema
from engine.i18n import N_
from engine.registry import Route
from plugins.billing.public import Invoice, Payment, Transaction, pushed
from plugins.operator import resources as r
from engine import upserts as rules
from plugins.operator.schemas import ExternalId, OperatorOfCustomer, text

SCOPE = "billing:write"


def money(low: int = -MAX_AMOUNT, high: int = MAX_AMOUNT, example: int | None = None, **kwargs):
    """An ``Amount`` in minor units (pence, cents), either sign unless narrowed; whole
    numbers only (12.5 is a field error, not 12)."""
    metadata = {"description": "minor units (pence, cents)", **kwargs.pop("metadata", {})}
    if example is not None:
        metadata["example"] = example
    return Amount(minimum=low, maximum=high, strict=True, metadata=metadata, **kwargs)


CURRENCY = fields.String(
    required=True,
    validate=validate.Regexp(r"^[A-Za-z]{3}\Z", error=N_("Three letters (ISO 4217).")),
    metadata={"example": "GBP"},
)


def basis_points(description: str, **kwargs) -> fields.Integer:
    """A tax rate in basis points (2000 is 20%)."""
    return fields.Integer(
        strict=True,
        validate=validate.Range(0, 10000),
        metadata={"description": description, "example": 2000},
        **kwargs,
    )


# -- in -----------------------------------------------------------------------------------


class InvoiceLineIn(Schema):
    description = text(1, 300, "Mobile 20 GB — December", required=True)
    quantity = fields.Integer(load_default=1, strict=True, validate=validate.Range(1, 10**6))
    unit_amount = money(required=True, example=1500)
    amount = money(
        metadata={"description": "quantity × unit_amount; checked when sent"}, example=1500
    )
    tax_rate = basis_points("basis points: 2000 is 20%", load_default=0)
    tax_amount = money(load_default=0, example=300)


class OperatorInvoiceIn(Schema):
    customer_external_id = ExternalId(required=True, metadata={"example": "ACC-1001"})
    number = text(1, 40, "INV-2026-0042", required=True)
    issued_at = AwareDateTime(required=True)
    due_at = AwareDateTime(required=True)
    period_start = AwareDateTime(allow_none=True)
    period_end = AwareDateTime(allow_none=True)
    currency = CURRENCY
    lines = fields.List(
        fields.Nested(InvoiceLineIn), required=True, validate=validate.Length(1, 500)
    )
    subtotal = money(required=True, example=1500)
    tax_total = money(required=True, example=300)
    total = money(required=True, example=1800)
    status = fields.String(
        validate=validate.OneOf(("unpaid", "overdue", "paid")),
        metadata={
            "example": "unpaid",
            "description": "`paid` only when nothing is owed: record payments with "
            "PUT /payments/{external_id}",
        },
    )
    notes = text(0, 2000)
    notify = fields.Boolean(
        metadata={"description": "tell the customer of a new invoice (default true)"}
    )

    @validates_schema
    def _dates(self, data, **kwargs):
        if data.get("due_at") and data.get("issued_at") and data["due_at"] < data["issued_at"]:
            raise ValidationError(N_("Must not be before issued_at."), "due_at")


class OperatorTransactionIn(Schema):
    customer_external_id = ExternalId(required=True, metadata={"example": "ACC-1001"})
    kind = fields.String(
        required=True,
        validate=validate.OneOf(("charge", "credit", "adjustment")),
        metadata={"example": "credit", "description": "an adjustment is either sign"},
    )
    description = text(1, 300, "Goodwill credit", required=True)
    amount = money(
        required=True, example=-500, metadata={"description": "net, minor units; credits < 0"}
    )
    currency = CURRENCY
    tax_rate = basis_points("basis points; default the billing tax rate")
    tax = money(metadata={"description": "default: the amount at the tax rate"})
    occurred_at = AwareDateTime()


class OperatorPaymentIn(Schema):
    customer_external_id = ExternalId(required=True, metadata={"example": "ACC-1001"})
    invoice_external_id = ExternalId(
        allow_none=True,
        metadata={"example": "INV-42", "description": "null or left out: on account"},
    )
    amount = money(1, MAX_AMOUNT, required=True, example=1800)
    currency = CURRENCY
    method = fields.String(
        required=True,
        validate=validate.OneOf(tuple(pushed.PAYMENT_METHODS)),
        metadata={"example": "bank_transfer"},
    )
    reference = text(0, 100, "BACS 20261205 BOB BIKES")
    received_at = AwareDateTime()


# -- out ----------------------------------------------------------------------------------

#: A recorded payment's method, as the PUT took it, from the label it stores.
METHOD_OF_LABEL = {label: method for method, label in pushed.PAYMENT_METHODS.items()}


class InvoiceLineOut(Schema):
    description = fields.String()
    quantity = fields.Integer()
    unit_amount = fields.Integer()
    amount = fields.Integer()
    tax_rate = fields.Integer()
    tax_amount = fields.Integer()


def _lines(row) -> list[dict]:
    return InvoiceLineOut(many=True).dump(row.lines.order_by(row.lines.model.position))


class OperatorInvoiceOut(OperatorOfCustomer):
    number = fields.String()
    issued_at = fields.DateTime()
    due_at = fields.DateTime()
    period_start = fields.DateTime(allow_none=True)
    period_end = fields.DateTime(allow_none=True)
    currency = fields.String()
    lines = fields.Function(_lines, metadata={"type": "array", "items": {"type": "object"}})
    subtotal = fields.Integer()
    tax_total = fields.Integer()
    total = fields.Integer()
    amount_paid = fields.Integer()
    amount_due = fields.Integer()
    status = fields.String()
    paid_at = fields.DateTime(allow_none=True)
    notes = fields.String()
    revision = fields.Integer(metadata={"description": "how often its lines changed"})
    pdf_ready = fields.Boolean(metadata={"description": "its PDF is rendered and stored"})


class OperatorTransactionOut(OperatorOfCustomer):
    kind = fields.String(metadata={"description": "charge or credit (an adjustment by sign)"})
    description = fields.String()
    amount = fields.Integer()
    tax_rate = fields.Integer()
    tax = fields.Integer()
    total = fields.Integer()
    currency = fields.String()
    occurred_at = fields.DateTime()
    invoiced = fields.Boolean()


class OperatorPaymentOut(OperatorOfCustomer):
    invoice_external_id = fields.Function(
        lambda row: row.invoice.external_id if row.invoice_id else None, allow_none=True
    )
    amount = fields.Integer()
    currency = fields.String()
    method = fields.Function(
        lambda row: METHOD_OF_LABEL.get(row.method_label, "other"),
        metadata={"example": "bank_transfer"},
    )
    method_label = fields.String(metadata={"example": "Bank transfer"})
    reference = fields.String()
    status = fields.String()
    received_at = fields.Function(
        lambda row: row.succeeded_at.isoformat() if row.succeeded_at else None,
        allow_none=True,
        metadata={"type": "string", "format": "date-time", "description": "when it was paid"},
    )
    succeeded_at = fields.DateTime(allow_none=True)


# -- routes -------------------------------------------------------------------------------


def by_customer(push):
    """``push(ctx, external_id, customer_id, values)`` with the customer by external id."""

    def upsert(ctx, external_id, body):
        body = dict(body)
        return push(ctx, external_id, rules.customer_id(body.pop("customer_external_id")), body)

    return upsert


INVOICES = r._pair(
    Invoice,
    SCOPE,
    by_customer(pushed.upsert_invoice),
    "invoice",
    OperatorInvoiceOut,
    OperatorInvoiceIn,
    page_schema(OperatorInvoiceOut, "OperatorInvoicePage"),
    put_description="Portico renders and stores its PDF as for its own invoices; the "
    "customer sees it and downloads the PDF. The lines' amounts and tax must add up to "
    "`subtotal`, `tax_total` and `total` (422). The same body again answers "
    "`\"change\": \"unchanged\"`; changed lines make a new revision and PDF, but not once "
    "anything is paid (409 `invoice-paid`). Needs the `billing:write` scope.",
)
TRANSACTIONS = r._pair(
    Transaction,
    SCOPE,
    by_customer(pushed.upsert_transaction),
    "transaction",
    OperatorTransactionOut,
    OperatorTransactionIn,
    page_schema(OperatorTransactionOut, "OperatorTransactionPage"),
    put_description="A charge, credit or adjustment of your ledger, shown in the "
    "customer's transactions and counted in the balance. Idempotent; one on an invoice "
    "cannot change (409 `transaction-invoiced`). Needs the `billing:write` scope.",
)
PAYMENTS = r._pair(
    Payment,
    SCOPE,
    by_customer(pushed.record_payment),
    "payment",
    OperatorPaymentOut,
    OperatorPaymentIn,
    page_schema(OperatorPaymentOut, "OperatorPaymentPage"),
    put_description="Money received outside Portico (bank transfer, cash, ...) against an "
    "invoice or the account. It is recorded once: the same body again answers "
    "`unchanged`, other values 409 `payment-recorded`. It marks the invoice paid once "
    "covered; more than owed is recorded in full and the surplus is a credit on the "
    "account. An invoice that owes nothing or has a card payment in flight answers 409. "
    "Needs the `billing:write` scope.",
)


def routes(base: str) -> list[Route]:
    """The invoices' list and one; transactions and payments one by one."""
    many, one = INVOICES
    return [
        Route(f"{base}/invoices", many),
        Route(f"{base}/invoices/{{external_id}}", one),
        Route(f"{base}/transactions/{{external_id}}", TRANSACTIONS[1]),
        Route(f"{base}/payments/{{external_id}}", PAYMENTS[1]),
    ]
