"""Billing tables: invoices and their lines, transactions, saved cards, payments, guest links.

Money is integer minor units with a currency. A customer can read these rows
(scoped by the ``customer`` foreign key) but no customer route writes an
invoice or a transaction: staff and the payment flow do (LIM-3).
"""

from __future__ import annotations

import peewee
from peewee import BooleanField, CharField, ForeignKeyField, IntegerField, TextField

from engine.db import BaseModel, CurrencyField, UTCDateTimeField, utcnow
from engine.models import EXTERNAL_ID_MAX, Customer, Service, Synced

INVOICE_STATUSES = ("unpaid", "paid", "overdue")
TRANSACTION_KINDS = ("charge", "credit", "payment", "refund")
PAYMENT_STATUSES = ("pending", "requires_action", "succeeded", "failed", "canceled")
#: Payments still in flight: at most one per invoice at a time.
OPEN_PAYMENT = ("pending", "requires_action")


class Invoice(Synced):
    """An issued invoice (BILL-1). Totals are fixed at issue; only payment fields change after.

    ``external_id``: the operator's id of an invoice its billing system pushed in (INT-4);
    ``revision`` counts the times such an invoice's lines changed before it was paid.
    """

    customer = ForeignKeyField(Customer, backref="invoices", on_delete="CASCADE")
    number = CharField(max_length=40, unique=True)
    issued_at = UTCDateTimeField(default=utcnow)
    due_at = UTCDateTimeField()
    period_start = UTCDateTimeField(null=True)
    period_end = UTCDateTimeField(null=True)
    currency = CurrencyField()
    subtotal = IntegerField()
    tax_total = IntegerField()
    total = IntegerField()
    amount_paid = IntegerField(default=0)
    status = CharField(
        max_length=10,
        default="unpaid",
        constraints=[peewee.Check("status in ('unpaid', 'paid', 'overdue')")],
    )
    paid_at = UTCDateTimeField(null=True)
    pdf_path = CharField(max_length=300, default="")  # relative to the data dir
    pdf_sha256 = CharField(max_length=64, default="")
    pdf_rendered_at = UTCDateTimeField(null=True)
    notes = TextField(default="")
    revision = IntegerField(default=0)

    class Meta:
        indexes = (
            (("customer", "id"), False),
            (("status", "due_at"), False),
            (("customer", "issued_at"), False),
        )

    @property
    def amount_due(self) -> int:
        return max(self.total - self.amount_paid, 0)

    @property
    def is_open(self) -> bool:
        return self.status != "paid"

    @property
    def pdf_ready(self) -> bool:
        return bool(self.pdf_path)


class InvoiceLine(BaseModel):
    """One line of an invoice: a transaction as it was billed (net amount and its tax)."""

    invoice = ForeignKeyField(Invoice, backref="lines", on_delete="CASCADE")
    position = IntegerField()
    description = CharField(max_length=300)
    quantity = IntegerField(default=1)
    unit_amount = IntegerField()
    amount = IntegerField()  # net, signed (a credit is negative)
    tax_rate = IntegerField(default=0)  # basis points: 2000 = 20%
    tax_amount = IntegerField(default=0)
    occurred_at = UTCDateTimeField(null=True)

    class Meta:
        indexes = ((("invoice", "position"), True),)


class InvoiceTaxLine(BaseModel):
    """The tax of an invoice per rate ("VAT 20% on £50.00: £10.00"), for tax records (BILL-3)."""

    invoice = ForeignKeyField(Invoice, backref="tax_lines", on_delete="CASCADE")
    name = CharField(max_length=100)
    rate = IntegerField()  # basis points
    taxable_amount = IntegerField()
    tax_amount = IntegerField()


class PaymentMethod(BaseModel):
    """A saved card (BILL-5): only the provider's reference and what the customer recognises."""

    customer = ForeignKeyField(Customer, backref="payment_methods", on_delete="CASCADE")
    provider = CharField(max_length=50)
    ref = CharField(max_length=255)
    brand = CharField(max_length=30, default="card")
    last4 = CharField(max_length=4)
    exp_month = IntegerField()
    exp_year = IntegerField()
    is_default = BooleanField(default=False)
    # A card entered to pay once (a guest's, or one the customer chose not to keep): never
    # listed, and forgotten once its payment is final.
    single_use = BooleanField(default=False)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("provider", "ref"), True), (("customer", "id"), False))

    @classmethod
    def for_customer(cls, customer_id: int):
        """The customer's own saved cards; single-use cards (a guest's) are nobody's to reuse."""
        return cls.select().where((cls.customer == customer_id) & ~cls.single_use)

    @property
    def label(self) -> str:
        return f"{self.brand.title()} •••• {self.last4}"

    def expires_before(self, year: int, month: int) -> bool:
        """True when the card's last valid month is before (year, month)."""
        return (self.exp_year, self.exp_month) < (year, month)


class ProviderCustomer(BaseModel):
    """A customer's record at a payment provider (Stripe: ``cus_...``)."""

    customer = ForeignKeyField(Customer, on_delete="CASCADE")
    provider = CharField(max_length=50)
    ref = CharField(max_length=255)

    class Meta:
        indexes = ((("customer", "provider"), True),)


class GuestPayLink(BaseModel):
    """A signed link that pays one invoice without signing in (BILL-6). Only its hash is kept."""

    invoice = ForeignKeyField(Invoice, backref="guest_links", on_delete="CASCADE")
    token_hash = CharField(max_length=64, unique=True)
    expires_at = UTCDateTimeField()
    revoked_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    created_by = CharField(max_length=60, default="")  # "user:3" or "staff:1"
    last_used_at = UTCDateTimeField(null=True)

    @classmethod
    def for_customer(cls, customer_id: int):
        return cls.select().join(Invoice).where(Invoice.customer == customer_id)

    def state(self, now=None) -> str:
        now = now or utcnow()
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "active"


class Payment(BaseModel):
    """One attempt to take money (or money recorded by staff). Moves money at most once.

    ``attempt_key`` is the idempotency key given to the provider; ``provider_ref``
    is written (and committed) before any money moves, so a lost answer is
    reconciled with the provider instead of charged again. ``three_d_secure`` is
    the outcome of strong customer authentication (``engine.payments.THREE_D_SECURE``; ""
    when unknown). A payment of
    several invoices at once (``purpose`` "invoices", BILL-8) has no ``invoice``: its
    ``allocations`` name them.
    """

    customer = ForeignKeyField(Customer, backref="payments", on_delete="CASCADE")
    invoice = ForeignKeyField(Invoice, null=True, backref="payments", on_delete="SET NULL")
    purpose = CharField(max_length=30, default="invoice")  # invoice, topup, ...
    amount = IntegerField()
    currency = CurrencyField()
    provider = CharField(max_length=50)  # a provider id, or "offline" for staff-recorded money
    provider_ref = CharField(max_length=255, default="", index=True)
    method = ForeignKeyField(PaymentMethod, null=True, on_delete="SET NULL")
    method_label = CharField(max_length=60, default="")
    status = CharField(
        max_length=20,
        default="pending",
        constraints=[
            peewee.Check(
                "status in ('pending', 'requires_action', 'succeeded', 'failed', 'canceled')"
            )
        ],
    )
    attempt_key = CharField(max_length=100, unique=True)
    off_session = BooleanField(default=False)
    via = CharField(max_length=20, default="portal")  # portal, api, guest, staff, auto
    user_id = IntegerField(null=True)
    guest_link = ForeignKeyField(GuestPayLink, null=True, on_delete="SET NULL")
    failure_code = CharField(max_length=60, default="")
    failure_message = CharField(max_length=300, default="")
    reference = CharField(max_length=100, default="")  # staff: bank reference
    external_id = CharField(max_length=EXTERNAL_ID_MAX, null=True, unique=True)  # INT-4
    refunded_amount = IntegerField(default=0)
    detach_after = BooleanField(default=False)  # a guest's card, forgotten once used
    three_d_secure = CharField(max_length=20, default="")
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)
    succeeded_at = UTCDateTimeField(null=True)

    class Meta:
        indexes = (
            (("customer", "id"), False),
            (("status", "created_at"), False),
            (("invoice", "status"), False),
        )


class PaymentAllocation(BaseModel):
    """One invoice of a payment that pays several at once (BILL-8).

    The set and each ``amount`` (what the invoice owed) are fixed when the payment is
    claimed; ``applied`` is what the invoice received when the payment succeeded (less
    when it was paid another way meanwhile: the rest became account credit).
    """

    payment = ForeignKeyField(Payment, backref="allocations", on_delete="CASCADE")
    invoice = ForeignKeyField(Invoice, backref="allocations", on_delete="CASCADE")
    amount = IntegerField()
    applied = IntegerField(default=0)

    class Meta:
        indexes = ((("payment", "invoice"), True),)


class Transaction(BaseModel):
    """A line of the customer's account (BILL-4): charges positive, credits negative.

    ``amount`` is net of tax, ``tax`` the tax on it; ``invoice`` is the invoice
    that holds it (None: not invoiced yet). A payment's transaction names the
    invoice it paid. ``reference`` makes recording idempotent (unique).
    """

    customer = ForeignKeyField(Customer, backref="transactions", on_delete="CASCADE")
    occurred_at = UTCDateTimeField(default=utcnow)
    kind = CharField(
        max_length=10,
        constraints=[peewee.Check("kind in ('charge', 'credit', 'payment', 'refund')")],
    )
    description = CharField(max_length=300)
    amount = IntegerField()
    tax_rate = IntegerField(default=0)  # basis points
    tax = IntegerField(default=0)
    currency = CurrencyField()
    invoice = ForeignKeyField(Invoice, null=True, backref="transactions", on_delete="SET NULL")
    service = ForeignKeyField(Service, null=True, on_delete="SET NULL")
    payment = ForeignKeyField(Payment, null=True, on_delete="SET NULL")
    reference = CharField(max_length=120, null=True, unique=True)
    external_id = CharField(max_length=EXTERNAL_ID_MAX, null=True, unique=True)  # INT-4
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("customer", "id"), False), (("customer", "invoice"), False))

    @property
    def total(self) -> int:
        return self.amount + self.tax

    @property
    def invoiced(self) -> bool:
        return self.invoice_id is not None


class ProviderEvent(BaseModel):
    """A provider webhook event already processed: each event id is acted on once."""

    provider = CharField(max_length=50)
    event_id = CharField(max_length=255)
    type = CharField(max_length=100)
    received_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("provider", "event_id"), True),)


MODELS = (
    Invoice,
    InvoiceLine,
    InvoiceTaxLine,
    PaymentMethod,
    ProviderCustomer,
    GuestPayLink,
    Payment,
    PaymentAllocation,
    Transaction,
    ProviderEvent,
)
