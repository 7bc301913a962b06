"""Top-up tables: the operator's catalogue, each purchase, and each service's auto top-up rule.

Money is integer minor units; quantities are in the balance's unit (bytes,
seconds, messages; minor units for monetary credit). A purchase keeps a copy
of what was bought, so editing the catalogue never rewrites history.
"""

from __future__ import annotations

import peewee
from peewee import BigIntegerField, BooleanField, CharField, ForeignKeyField, IntegerField

from engine.catalogue import CatalogueEntry
from engine.db import BaseModel, CurrencyField, UTCDateTimeField, utcnow
from engine.models import Customer, Service, Synced
from plugins.billing.public import Payment

KINDS = ("data", "voice", "sms", "mms", "monetary")
UNITS = {"data": "bytes", "voice": "seconds", "sms": "messages", "mms": "messages"}
#: pending: paying; credited: done; failed: not paid (declined, 3-D Secure refused);
#: refunding/refunded: paid but the credit could not be applied, so the money goes back.
PURCHASE_STATUSES = ("pending", "credited", "failed", "refunding", "refunded")


class TopupProduct(CatalogueEntry, Synced):
    """One catalogue entry, for one service type (TOP-2). Operators edit these, not code.

    ``quantity`` is what is added; a ``custom`` monetary product lets the
    customer choose the amount between ``min_amount`` and ``max_amount`` (the
    price is the amount). ``price`` includes tax.
    """

    audit_prefix = "topup"

    kind = CharField(
        max_length=10,
        constraints=[peewee.Check("kind in ('data', 'voice', 'sms', 'mms', 'monetary')")],
    )
    quantity = BigIntegerField(default=0)
    price = IntegerField(default=0)
    custom = BooleanField(default=False)
    min_amount = IntegerField(null=True)
    max_amount = IntegerField(null=True)
    validity_days = IntegerField(null=True)  # None: the credit never expires
    weight = IntegerField(default=20)  # USE-3: 10 promo, 20 top-ups, 30 base plan

    @property
    def unit(self) -> str:
        return UNITS.get(self.kind, self.currency)


class TopupPurchase(BaseModel):
    """One top-up bought for a service (TOP-1) or by auto top-up (TOP-3), and what became of it."""

    customer = ForeignKeyField(Customer, backref="topup_purchases", on_delete="CASCADE")
    service = ForeignKeyField(Service, backref="topup_purchases", on_delete="CASCADE")
    product = ForeignKeyField(TopupProduct, null=True, on_delete="SET NULL")
    kind = CharField(max_length=10)
    name = CharField(max_length=100)
    quantity = BigIntegerField()
    unit = CharField(max_length=10)
    price = IntegerField()
    currency = CurrencyField()
    weight = IntegerField(default=20)
    validity_days = IntegerField(null=True)
    status = CharField(
        max_length=12,
        default="pending",
        constraints=[
            peewee.Check("status in ('pending', 'credited', 'failed', 'refunding', 'refunded')")
        ],
    )
    payment = ForeignKeyField(Payment, null=True, unique=True, on_delete="SET NULL")
    auto = BooleanField(default=False)
    via = CharField(max_length=20, default="portal")  # portal, api, auto
    user_id = IntegerField(null=True)
    bucket_ref = CharField(max_length=60, default="")  # the balance plugin's bucket id
    expires_at = UTCDateTimeField(null=True)
    failure_message = CharField(max_length=300, default="")
    created_at = UTCDateTimeField(default=utcnow)
    credited_at = UTCDateTimeField(null=True)

    class Meta:
        indexes = ((("customer", "id"), False), (("service", "id"), False))

    @property
    def reference(self) -> str:
        """What the credit carries: one purchase never credits twice."""
        return f"topup:{self.id}"


class AutoTopup(BaseModel):
    """A service's auto top-up of monetary credit (TOP-3): below ``threshold``, buy ``amount``.

    ``disabled_reason`` says why it was switched off by the system (a failed
    charge); the customer sees it as an alert until they switch it on again.
    """

    customer = ForeignKeyField(Customer, on_delete="CASCADE")
    service = ForeignKeyField(Service, unique=True, on_delete="CASCADE")
    enabled = BooleanField(default=False)
    threshold = IntegerField()
    amount = IntegerField()
    currency = CurrencyField(default="GBP")
    disabled_reason = CharField(max_length=300, default="")
    disabled_at = UTCDateTimeField(null=True)
    last_run_at = UTCDateTimeField(null=True)
    updated_at = UTCDateTimeField(default=utcnow)


MODELS = (TopupProduct, TopupPurchase, AutoTopup)
