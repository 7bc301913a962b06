"""Service tokens: how the operator's systems sign in to the operator API (INT-1)."""

from __future__ import annotations

from peewee import CharField, ForeignKeyField, IntegerField

from engine.db import BaseModel, UTCDateTimeField, utcnow
from engine.models import Contact, StaffUser


class ServiceToken(BaseModel):
    """A token for a system, not a person: shown once, kept as a hash, scoped, expiring."""

    name = CharField(max_length=100)
    prefix = CharField(max_length=16)  # the first characters, to recognise a token
    token_hash = CharField(max_length=64, unique=True)
    scopes = CharField(max_length=200)  # space-separated (operator.tokens.SCOPES)
    created_by = ForeignKeyField(StaffUser, null=True, on_delete="SET NULL")
    created_at = UTCDateTimeField(default=utcnow)
    expires_at = UTCDateTimeField()
    last_used_at = UTCDateTimeField(null=True)
    last_used_ip = CharField(max_length=64, default="")
    revoked_at = UTCDateTimeField(null=True)
    #: Requests a minute; null takes ``[operator] token_rate`` (the default for all tokens).
    rate_per_minute = IntegerField(null=True)

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())

    def state(self, now=None) -> str:
        """active, expired or revoked."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"


class Invitation(BaseModel):
    """A contact's invitation to the portal (INT-2): an emailed link to set a password.

    Only the token's hash is kept. It works once, until ``expires_at``, while it is the
    contact's newest (sending again revokes the one before) and the address is unchanged.
    """

    contact = ForeignKeyField(Contact, backref="invitations", on_delete="CASCADE")
    token_hash = CharField(max_length=64, unique=True)
    email = CharField(max_length=254)  # the address it was sent to
    created_at = UTCDateTimeField(default=utcnow)
    expires_at = UTCDateTimeField()
    used_at = UTCDateTimeField(null=True)
    revoked_at = UTCDateTimeField(null=True)


MODELS = (ServiceToken, Invitation)
