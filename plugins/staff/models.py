"""Impersonations (IMP-1..5): who opened which customer's portal, why, and the one-time link."""
from __future__ import annotations

from peewee import CharField, ForeignKeyField

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


MODELS = (Impersonation,)
