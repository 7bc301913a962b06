"""Billing settings, and the shapes of the billing API and forms (one schema for both faces)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from engine import idempotency
from engine.api import MAX_AMOUNT, Amount, AwareDateTime, Id, MoneySchema, PageQuery, money
from engine.context import as_id
from engine.dayrange import DayRange
from engine.i18n import N_
from plugins.billing import payall

#: Invoices one payment may pay at once (BILL-8): years of monthly bills.
PAY_ALL_LIMIT = 100
THREE_D_SECURE_TEXT = (
    "3-D Secure: authenticated, attempted (the bank took an attempt as enough), "
    "not_required, not_supported (the card has none), failed, required (asked, not "
    "finished); empty when the provider did not say"
)


TAX_RATE = validate.Range(
    0, 10000, error=N_("Basis points from 0 to 10000 (2000 means 20 per cent).")
)


class BillingSettings(Schema):
    provider = fields.String(
        load_default="sandbox",
        metadata={
            "description": "id of the payment provider for new cards: 'sandbox' (demo) or 'stripe'"
        },
    )
    tax_name = fields.String(
        load_default="VAT", metadata={"description": "the tax's name on invoices"}
    )
    tax_rate = fields.Integer(
        load_default=2000,
        validate=TAX_RATE,
        metadata={"description": "default tax rate in basis points (2000 = 20%)"},
    )
    payment_terms_days = fields.Integer(
        load_default=14,
        validate=validate.Range(0, 365),
        metadata={"description": "days from issue to the due date"},
    )
    invoice_prefix = fields.String(
        load_default="INV-",
        validate=validate.Length(max=10),
        metadata={"description": "invoice numbers are this prefix and six digits"},
    )
    guest_link_days = fields.Integer(
        load_default=14,
        validate=validate.Range(1, 90),
        metadata={"description": "how long a guest payment link works (BILL-6)"},
    )
    card_expiry_warning_days = fields.Integer(
        load_default=30,
        validate=validate.Range(1, 120),
        metadata={"description": "warn this many days before a saved card expires"},
    )
    pay_rate = fields.String(
        load_default="10/hour",
        validate=validate.Regexp(r"^\d+\s*/\s*(\d+\s*)?(second|minute|hour|day)s?\Z"),
        metadata={
            "description": "payment attempts per invoice-paying customer, per service for "
            "top-ups and add-ons, per guest link and per address"
        },
    )
    pay_account_rate = fields.String(
        load_default="100/hour",
        validate=validate.Regexp(r"^\d+\s*/\s*(\d+\s*)?(second|minute|hour|day)s?\Z"),
        metadata={
            "description": "top-up and add-on payments per customer across all their services: "
            "a business topping up 20 lines is not refused, a card tester is"
        },
    )
    card_rate = fields.String(
        load_default="20/hour",
        validate=validate.Regexp(r"^\d+\s*/\s*(\d+\s*)?(second|minute|hour|day)s?\Z"),
        metadata={"description": "cards a customer may start adding"},
    )
    seller_name = fields.String(
        load_default="Portico Telecom Ltd",
        metadata={"description": "the operator's legal name, on invoice PDFs"},
    )
    seller_address = fields.String(
        load_default="1 Example Street, London, EC1A 1AA",
        metadata={"description": "the operator's address, on invoices"},
    )
    seller_tax_id = fields.String(
        load_default="GB 123 4567 89",
        metadata={"description": "the operator's VAT or tax number, on invoices"},
    )


def _money(obj, amount_attr: str) -> dict:
    return money(getattr(obj, amount_attr), obj.currency)


# -- invoices (BILL-1, BILL-3) -----------------------------------------------------------------


class InvoiceLineSchema(Schema):
    description = fields.String()
    quantity = fields.Integer()
    unit_amount = fields.Function(lambda l: money(l.unit_amount, l.invoice.currency))
    amount = fields.Function(lambda l: money(l.amount, l.invoice.currency))
    tax_rate = fields.Integer(metadata={"description": "basis points"})
    tax = fields.Function(lambda l: money(l.tax_amount, l.invoice.currency))


class TaxLineSchema(Schema):
    name = fields.String()
    rate = fields.Integer(metadata={"description": "basis points"})
    taxable = fields.Function(lambda t: money(t.taxable_amount, t.invoice.currency))
    tax = fields.Function(lambda t: money(t.tax_amount, t.invoice.currency))


class InvoiceSchema(Schema):
    id = fields.Integer()
    number = fields.String()
    issued_at = fields.DateTime()
    due_at = fields.DateTime()
    status = fields.String(metadata={"enum": ["paid", "unpaid", "overdue"]})
    subtotal = fields.Function(lambda i: _money(i, "subtotal"), metadata={"type": "object"})
    tax = fields.Function(lambda i: _money(i, "tax_total"))
    total = fields.Function(lambda i: _money(i, "total"))
    amount_paid = fields.Function(lambda i: _money(i, "amount_paid"))
    amount_due = fields.Function(lambda i: _money(i, "amount_due"))
    paid_at = fields.DateTime(allow_none=True)
    pdf_url = fields.Function(lambda i: f"/api/v1/invoices/{i.id}/pdf")
    pay_url = fields.Function(lambda i: f"/api/v1/invoices/{i.id}/pay" if i.is_open else None)


def _children(invoice, rows, schema) -> list:
    rows = list(rows)
    for row in rows:
        row.invoice = invoice  # the parent is at hand: no query per line
    return schema(many=True).dump(rows)


class InvoiceDetailSchema(InvoiceSchema):
    period_start = fields.DateTime(allow_none=True)
    period_end = fields.DateTime(allow_none=True)
    lines = fields.Function(
        lambda i: _children(i, i.lines.order_by(i.lines.model.position), InvoiceLineSchema)
    )
    tax_lines = fields.Function(lambda i: _children(i, i.tax_lines, TaxLineSchema))
    notes = fields.String()


class InvoicePage(Schema):
    items = fields.List(fields.Nested(InvoiceSchema))
    next = fields.String(allow_none=True)


class InvoiceQuery(PageQuery):
    status = fields.String(
        load_default=None,
        validate=validate.OneOf(["paid", "unpaid", "overdue", "open"]),
        metadata={"description": "'open' is unpaid and overdue together"},
    )


class ArchiveQuery(Schema):
    """Which invoices to zip: a list of ids, or a date range of issue dates (BILL-7)."""

    ids = fields.String(load_default=None, metadata={"description": "comma-separated ids"})
    start = fields.Date(data_key="from", load_default=None)
    end = fields.Date(data_key="to", load_default=None)

    @validates_schema
    def one_way(self, data, **kwargs):
        if not data.get("ids") and not (data.get("start") or data.get("end")):
            raise ValidationError(N_("Choose invoices, or a date range."), "ids")
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise ValidationError(N_("The start date is after the end date."), "from")
        if data.get("ids"):
            try:
                data["id_list"] = [as_id(x) for x in data["ids"].split(",") if x.strip()]
            except ValueError:
                raise ValidationError(
                    N_("Comma-separated invoice ids, e.g. 12,13."), "ids"
                ) from None


# -- transactions (BILL-4) --------------------------------------------------------------------


class TransactionSchema(Schema):
    id = fields.Integer()
    occurred_at = fields.DateTime(data_key="date")
    kind = fields.String(metadata={"enum": ["charge", "credit", "payment", "refund"]})
    description = fields.String()
    amount = fields.Function(
        lambda t: _money(t, "total"),
        metadata={"description": "including tax; charges positive, credits and payments negative"},
    )
    net = fields.Function(lambda t: _money(t, "amount"))
    tax = fields.Function(lambda t: _money(t, "tax"))
    status = fields.Function(lambda t: "invoiced" if t.invoiced else "not_invoiced")
    invoice_id = fields.Integer(allow_none=True)
    invoice_number = fields.Function(
        lambda t: getattr(t, "invoice_number", None),
        metadata={"description": "the number of the invoice that holds it"},
    )
    payment_id = fields.Integer(allow_none=True)
    provider_ref = fields.Function(
        lambda t: getattr(t, "provider_ref", None),
        metadata={"description": "a payment's reference at the payment provider (BILL-2)"},
    )
    three_d_secure = fields.Function(
        lambda t: getattr(t, "three_d_secure", None),
        metadata={"description": "a card payment's " + THREE_D_SECURE_TEXT},
    )


class TransactionPage(Schema):
    items = fields.List(fields.Nested(TransactionSchema))
    next = fields.String(allow_none=True)


KINDS = ("charge", "credit", "payment", "refund")


class TransactionFilter(DayRange):
    """Which transactions (BILL-4): dates are days in the customer's time zone, inclusive."""

    status = fields.String(load_default=None, validate=validate.OneOf(["invoiced", "not_invoiced"]))
    kind = fields.String(
        load_default=None,
        data_key="type",
        validate=validate.OneOf(KINDS),
        metadata={"description": "only this type: " + ", ".join(KINDS)},
    )


class TransactionQuery(PageQuery, TransactionFilter):
    pass


# -- payment methods (BILL-5) -----------------------------------------------------------------


class PaymentMethodSchema(Schema):
    id = fields.Integer()
    provider = fields.String()
    brand = fields.String()
    last4 = fields.String()
    exp_month = fields.Integer()
    exp_year = fields.Integer()
    is_default = fields.Boolean()
    expiring = fields.Boolean(metadata={"description": "expired or expiring soon"})
    created_at = fields.DateTime()


class PaymentMethodList(Schema):
    items = fields.List(fields.Nested(PaymentMethodSchema))
    next = fields.String(allow_none=True)


class SetupIn(Schema):
    provider = fields.String(load_default=None)


class SetupOut(Schema):
    provider = fields.String()
    setup_ref = fields.String()
    client_secret = fields.String()
    widget = fields.Dict()


class CardIn(Schema):
    """Save the card of a finished setup; ``token`` is what the provider's widget produced."""

    setup_ref = fields.String(required=True, validate=validate.Length(1, 255))
    token = fields.String(load_default="", validate=validate.Length(max=255))
    make_default = fields.Boolean(load_default=False)
    provider = fields.String(load_default=None)


# -- paying (BILL-2) ---------------------------------------------------------------------------


class PayIn(Schema):
    payment_method_id = Id(
        load_default=None, metadata={"description": "a saved card; default: your default card"}
    )


class PayAllIn(Schema):
    """Pay every open invoice at once (BILL-8)."""

    payment_method_id = Id(
        load_default=None, metadata={"description": "a saved card; default: your default card"}
    )
    invoice_ids = fields.List(
        Id(),
        load_default=None,
        validate=validate.Length(1, PAY_ALL_LIMIT),
        metadata={
            "description": "exactly these invoices (the ones you showed the customer); "
            "default: every unpaid and overdue invoice"
        },
    )
    currency = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^[A-Za-z]{3}\Z", error=N_("A three-letter currency code.")),
        metadata={"description": "only when you owe in several currencies: which to pay"},
    )


class PaymentSchema(Schema):
    id = fields.Integer()
    status = fields.String(
        metadata={"enum": ["pending", "requires_action", "succeeded", "failed", "canceled"]}
    )
    amount = fields.Function(lambda p: _money(p, "amount"))
    invoice_id = fields.Integer(allow_none=True)
    invoice_ids = fields.Function(
        lambda p: payall.invoice_ids(p),
        metadata={"description": "every invoice it pays (several: a payment of all, BILL-8)"},
    )
    method = fields.String(attribute="method_label")
    provider = fields.String()
    provider_ref = fields.String(
        metadata={"description": "the provider's reference (Stripe: the PaymentIntent id)"}
    )
    three_d_secure = fields.String(metadata={"description": THREE_D_SECURE_TEXT})
    failure_code = fields.String()
    failure_message = fields.String()
    created_at = fields.DateTime()
    succeeded_at = fields.DateTime(allow_none=True)


class PayOut(Schema):
    payment = fields.Nested(PaymentSchema)
    invoice = fields.Nested(InvoiceSchema, allow_none=True)
    invoices = fields.List(
        fields.Nested(InvoiceSchema),
        metadata={"description": "every invoice the payment pays (one, or several: BILL-8)"},
    )
    next_action = fields.Dict(
        allow_none=True,
        metadata={
            "description": "when status is requires_action: {type: 'authenticate', provider, "
            "client_secret}; finish in the browser, then POST /payments/{id}/complete"
        },
    )


# -- guest links (BILL-6) ----------------------------------------------------------------------


class LinkIn(Schema):
    days = fields.Integer(load_default=None, validate=validate.Range(1, 90))


class LinkSchema(Schema):
    id = fields.Integer()
    invoice_id = fields.Integer()
    state = fields.Function(
        lambda l: l.state(), metadata={"enum": ["active", "expired", "revoked"]}
    )
    expires_at = fields.DateTime()
    created_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)
    url = fields.Function(
        lambda l: getattr(l, "url", None),
        metadata={"description": "only in the answer that created it: it is not stored"},
    )


class LinkList(Schema):
    items = fields.List(fields.Nested(LinkSchema))
    next = fields.String(allow_none=True)


# -- staff ------------------------------------------------------------------------------------


class StaffTransactionIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(["charge", "credit"]))
    description = fields.String(required=True, validate=validate.Length(1, 300))
    amount = Amount(
        minimum=-MAX_AMOUNT,
        required=True,
        metadata={"description": "net minor units: positive for a charge, negative for a credit"},
    )
    currency = fields.String(load_default=None, validate=validate.Length(equal=3))
    tax_rate = fields.Integer(load_default=None, validate=TAX_RATE)
    occurred_at = AwareDateTime(load_default=None, default_timezone=None)
    service_id = Id(load_default=None)
    reference = fields.String(
        load_default=None,
        validate=validate.Length(1, 120),
        metadata={
            "description": "your id for it: sending the same reference again records nothing new"
        },
    )

    @validates_schema
    def signed(self, data, **kwargs):
        if data["kind"] == "charge" and data["amount"] <= 0:
            raise ValidationError(N_("A charge is a positive amount."), "amount")
        if data["kind"] == "credit" and data["amount"] >= 0:
            raise ValidationError(N_("A credit is a negative amount."), "amount")


class IssueIn(Schema):
    currency = fields.String(load_default=None, validate=validate.Length(equal=3))
    transaction_ids = fields.List(Id(), load_default=None)
    due_days = fields.Integer(load_default=None, validate=validate.Range(0, 365))
    notes = fields.String(load_default="", validate=validate.Length(max=2000))


class OfflinePaymentIn(Schema):
    amount = Amount(minimum=1, required=True)
    method = fields.String(load_default="Bank transfer", validate=validate.Length(1, 60))
    reference = fields.String(load_default="", validate=validate.Length(max=100))


class RefundIn(Schema):
    amount = Amount(minimum=1, required=True)


__all__ = ["BillingSettings", "MoneySchema"]


# -- portal forms --------------------------------------------------------------------------------


class KeyForm(Schema):
    """A form that moves money once: its key, made when it was rendered (``engine.idempotency``)."""

    idempotency_key = fields.String(
        required=True, validate=validate.Regexp(idempotency.KEY_PATTERN, error=idempotency.KEY_RULE)
    )


class PayForm(KeyForm):
    """The pay page: a saved card's id or "new" (then the provider widget's setup fields)."""

    method = fields.String(required=True, error_messages={"required": N_("Choose how to pay.")})
    setup_ref = fields.String(load_default="", validate=validate.Length(max=255))
    token = fields.String(load_default="", validate=validate.Length(max=255))
    save_card = fields.Boolean(load_default=False)

    @validates_schema
    def card_chosen(self, data, **kwargs):
        if data["method"] == "new":
            if not data["setup_ref"]:
                raise ValidationError(N_("Enter your card details."), "method")
        elif not data["method"].isdigit():
            raise ValidationError(N_("Choose how to pay."), "method")


class PayAllForm(PayForm):
    """ "Pay all": the pay page's fields and the invoices the customer was shown (BILL-8)."""

    invoice_ids = fields.String(
        required=True,
        validate=validate.Length(1, 2000),
        error_messages={"required": N_("Nothing to pay.")},
    )

    @validates_schema
    def listed(self, data, **kwargs):
        try:
            ids = [as_id(x) for x in data["invoice_ids"].split(",") if x.strip()]
        except ValueError:
            raise ValidationError(N_("Nothing to pay."), "invoice_ids") from None
        if not 1 <= len(ids) <= PAY_ALL_LIMIT:
            raise ValidationError(N_("Nothing to pay."), "invoice_ids")
        data["id_list"] = ids


class CardForm(Schema):
    setup_ref = fields.String(
        required=True,
        validate=validate.Length(1, 255),
        error_messages={"required": N_("Enter your card details.")},
    )
    token = fields.String(load_default="", validate=validate.Length(max=255))
    make_default = fields.Boolean(load_default=False)
