"""Balances as buckets, the ledger of every change to them, and the usage events rated into them.

Quantities are integers: data in bytes, voice in seconds, SMS/MMS in messages,
monetary credit in minor units of the service's currency. A bucket's
``remaining`` always equals its ``initial`` plus the sum of its ledger rows.
"""

from __future__ import annotations

import peewee
from peewee import (
    BigAutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    ForeignKeyField,
    IntegerField,
)

from engine.db import BaseModel, UTCDateTimeField, utcnow
from engine.models import Service, Synced

BALANCE_TYPES = ("data", "voice", "sms", "mms", "monetary")
EVENT_TYPES = BALANCE_TYPES
#: Which events a bucket may pay for: domestic, international, or any (see rating.eligible).
SCOPES = ("any", "domestic", "international")
DESTINATIONS = ("onnet", "offnet", "international", "special")
SOURCES = ("plan", "promo", "topup", "credit", "adjustment")
UNITS = {"data": "bytes", "voice": "seconds", "sms": "messages", "mms": "messages"}


class Bucket(Synced):
    """One allowance or credit of a service (USE-1..3).

    ``external_id`` names a bucket the operator granted (the operator API); ``updated_at``
    moves when the operator or staff change it, not when usage draws it down.

    Consumed in ``weight`` order (10 promo, 20 top-ups, 30 base plan by
    default), the earliest expiry first among equal weights; never once expired.
    ``renewable`` buckets are the base plan's: each renewal refills them.
    """

    service = ForeignKeyField(Service, backref="buckets", on_delete="CASCADE")
    type = CharField(max_length=10)
    scope = CharField(max_length=15, default="any")
    name = CharField(max_length=100, default="")
    source = CharField(max_length=15, default="plan")
    weight = IntegerField(default=30)
    initial = BigIntegerField()
    remaining = BigIntegerField(constraints=[peewee.Check("remaining >= 0")])
    unit = CharField(max_length=10)
    renewable = BooleanField(default=False)
    expires_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    reference = CharField(max_length=100, default="")  # e.g. the top-up purchase that created it

    class Meta:
        indexes = ((("service", "type"), False),)

    @classmethod
    def for_customer(cls, customer_id: int) -> peewee.Select:
        return cls.select().join(Service).where(Service.customer == customer_id)


class LedgerEntry(BaseModel):
    """One change to a bucket: usage (negative), a charge to credit, a renewal, an adjustment."""

    id = BigAutoField()  # several rows per usage event: 64-bit (OPS-7, migration 0003)
    # Indexed by (bucket, id) below, which serves every lookup by bucket (migration 0002).
    bucket = ForeignKeyField(Bucket, backref="ledger", on_delete="CASCADE", index=False)
    kind = CharField(max_length=15)  # usage, charge, renewal, adjustment
    delta = BigIntegerField()
    reference = CharField(max_length=100, default="")  # the usage event id, or the period
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("bucket", "id"), False),)

    @classmethod
    def for_customer(cls, customer_id: int) -> peewee.Select:
        return cls.select().join(Bucket).join(Service).where(Service.customer == customer_id)


class UsageEvent(BaseModel):
    """A usage record from the network or charging side, rated once (unique ``event_id``).

    ``covered`` came out of allowance buckets, ``charged`` (minor units) out of
    monetary credit, and ``overage`` (in the event's unit) is what nothing paid for.
    """

    id = BigAutoField()  # 1M subscribers x 20 events a day pass 2^31 in 107 days (OPS-7)
    event_id = CharField(max_length=100, unique=True)
    # Indexed by (service, occurred_at) and (service, type, id) below (migration 0002).
    service = ForeignKeyField(Service, backref="usage_events", on_delete="CASCADE", index=False)
    type = CharField(max_length=10)
    quantity = BigIntegerField()
    occurred_at = UTCDateTimeField()
    destination = CharField(
        max_length=15, default=""
    )  # voice: onnet, offnet, international, special
    international = BooleanField(default=False)
    counterparty = CharField(max_length=40, default="")  # the number called or texted
    covered = BigIntegerField(default=0)
    charged = BigIntegerField(default=0)
    overage = BigIntegerField(default=0)
    rated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("service", "occurred_at"), False),  # usage totals and history by date
            (("service", "type", "id"), False),
        )  # call records, keyset pages by id

    @classmethod
    def for_customer(cls, customer_id: int) -> peewee.Select:
        return cls.select().join(Service).where(Service.customer == customer_id)


MODELS = (Bucket, LedgerEntry, UsageEvent)
