"""The sandbox's own records: what a real payment service would keep on its side.

They live in Portico's database only because the sandbox is embedded; billing
never reads them, it talks to the sandbox through the provider interface.
"""

from __future__ import annotations

import peewee
from peewee import BooleanField, CharField, IntegerField

from engine.db import BaseModel, CurrencyField, UTCDateTimeField, utcnow


class SandboxCustomer(BaseModel):
    ref = CharField(max_length=40, unique=True)
    email = CharField(max_length=254, default="")
    created_at = UTCDateTimeField(default=utcnow)


class SandboxSetup(BaseModel):
    ref = CharField(max_length=40, unique=True)
    customer_ref = CharField(max_length=40, index=True)
    status = CharField(max_length=30, default="requires_payment_method")  # or succeeded
    card_ref = CharField(max_length=40, default="")
    created_at = UTCDateTimeField(default=utcnow)


class SandboxCard(BaseModel):
    """A tokenised test card: its behaviour, brand, last four digits and expiry. Never a number."""

    ref = CharField(max_length=40, unique=True)
    customer_ref = CharField(max_length=40, index=True)
    kind = CharField(max_length=20)  # ok, decline, funds, auth
    brand = CharField(max_length=20)
    last4 = CharField(max_length=4)
    exp_month = IntegerField()
    exp_year = IntegerField()
    detached = BooleanField(default=False)
    created_at = UTCDateTimeField(default=utcnow)


class SandboxCharge(BaseModel):
    """A payment at the sandbox; one per idempotency key, like a real provider."""

    ref = CharField(max_length=40, unique=True)
    idempotency_key = CharField(max_length=120, unique=True)
    customer_ref = CharField(max_length=40)
    card_ref = CharField(max_length=40)
    amount = IntegerField()
    currency = CurrencyField()
    status = CharField(max_length=30, default="requires_confirmation")
    client_secret = CharField(max_length=80)
    off_session = BooleanField(default=False)
    failure_code = CharField(max_length=60, default="")
    failure_message = CharField(max_length=200, default="")
    refunded = IntegerField(default=0)
    metadata = peewee.JSONField(default=dict)
    created_at = UTCDateTimeField(default=utcnow)


class SandboxRefund(BaseModel):
    ref = CharField(max_length=40, unique=True)
    idempotency_key = CharField(max_length=120, unique=True)
    charge_ref = CharField(max_length=40, index=True)
    amount = IntegerField()
    created_at = UTCDateTimeField(default=utcnow)


MODELS = (SandboxCustomer, SandboxSetup, SandboxCard, SandboxCharge, SandboxRefund)
