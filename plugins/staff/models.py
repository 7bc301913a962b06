"""Impersonations (IMP-1..5): who opened which customer's portal, why, and the one-time link;
and each staff member's authenticator and backup codes for two-step sign-in (SEC-5)."""

from __future__ import annotations

from peewee import CharField, ForeignKeyField, IntegerField

from engine.db import BaseModel, UTCDateTimeField, utcnow
from engine.models import Contact, Customer, StaffUser, User


class Impersonation(BaseModel):
    """A staff member's visit to a customer's portal. The link's token is kept only as a hash."""

    staff = ForeignKeyField(StaffUser, backref="impersonations", on_delete="CASCADE")
    user = ForeignKeyField(User, backref="impersonations", on_delete="CASCADE")
    contact = ForeignKeyField(Contact, on_delete="CASCADE")
    customer = ForeignKeyField(Customer, backref="impersonations", on_delete="CASCADE")
    reason = CharField(max_length=500)
    token_hash = CharField(max_length=64, unique=True)
    created_at = UTCDateTimeField(default=utcnow)
    link_expires_at = UTCDateTimeField()
    opened_at = UTCDateTimeField(null=True)

    class Meta:
        indexes = ((("customer", "id"), False),)


class StaffTwoFactor(BaseModel):
    """A staff member's TOTP authenticator, kept as customers' are (``identity.TwoFactor``): a
    sealed seed, ``last_step`` against replays, ``confirmed_at`` once the first code passed."""

    staff = ForeignKeyField(StaffUser, backref="two_factor", unique=True, on_delete="CASCADE")
    secret = CharField(max_length=200)
    confirmed_at = UTCDateTimeField(null=True)
    last_step = IntegerField(default=0)
    created_at = UTCDateTimeField(default=utcnow)

    SEALED_FIELDS = ("secret",)  # `portico reseal` moves it to a new secret key


class StaffBackupCode(BaseModel):
    """A staff member's one-time backup code (SEC-5), kept as customers' are
    (``identity.BackupCode``): an HMAC under the secret key, spent once."""

    staff = ForeignKeyField(StaffUser, backref="backup_codes", on_delete="CASCADE")
    code_hash = CharField(max_length=64, index=True)
    used_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)


MODELS = (Impersonation, StaffTwoFactor, StaffBackupCode)
