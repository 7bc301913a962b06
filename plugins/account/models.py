"""Pending email-address changes (ACCT-1): the new address proves itself by a link."""

from __future__ import annotations

from peewee import CharField, ForeignKeyField

from engine.db import BaseModel, UTCDateTimeField, utcnow
from engine.models import User


class EmailChange(BaseModel):
    """A change waiting for the link sent to ``new_email``; only the token's hash is kept."""

    user = ForeignKeyField(User, backref="email_changes", on_delete="CASCADE")
    old_email = CharField(max_length=254)
    new_email = CharField(max_length=254)
    token_hash = CharField(max_length=64, unique=True)
    created_at = UTCDateTimeField(default=utcnow)
    used_at = UTCDateTimeField(null=True)


MODELS = (EmailChange,)
