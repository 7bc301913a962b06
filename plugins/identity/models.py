"""Identity tables: sessions, login guards, reset links, 2FA, API keys, known devices, rate counters.

Every secret here is stored as a hash (SHA-256 of a random token, or an HMAC
for short backup codes); the TOTP seed, which checking a code needs, is sealed
(encrypted and authenticated under a key derived from the first of ``secret_keys``).
"""

from __future__ import annotations

from peewee import (
    CharField,
    DoubleField,
    ForeignKeyField,
    IntegerField,
)

from engine.db import BaseModel, UTCDateTimeField, utcnow
from engine.models import Contact, Customer, StaffUser, User

SESSION_KINDS = ("customer", "staff", "impersonation", "otp")


class Session(BaseModel):
    """A signed-in browser or API client. The token is random; only its hash is kept.

    ``kind``: "customer", "staff", "impersonation" (``user`` is the customer's
    login, ``staff`` the impersonator) or "otp" (password checked, second
    factor pending: it authenticates nothing). ``contact``: the customer account the session
    acts for when the login has several (SUP-2, ``LinkedContact``); null for its own.
    """

    token_hash = CharField(max_length=64, unique=True)
    kind = CharField(max_length=20)
    user = ForeignKeyField(User, null=True, backref="sessions", on_delete="CASCADE")
    staff = ForeignKeyField(StaffUser, null=True, backref="sessions", on_delete="CASCADE")
    impersonation_id = IntegerField(null=True)
    # SUP-2: the account the session acts for when it is not the login's own (a linked contact)
    contact = ForeignKeyField(Contact, null=True, on_delete="SET NULL")
    created_at = UTCDateTimeField(default=utcnow)
    last_seen_at = UTCDateTimeField(default=utcnow)
    expires_at = UTCDateTimeField()  # the absolute timeout
    idle_seconds = IntegerField()
    ip = CharField(max_length=64, default="")
    user_agent = CharField(max_length=300, default="")
    next_path = CharField(max_length=500, default="")  # where an "otp" session goes after 2FA
    revoked_at = UTCDateTimeField(null=True)

    @classmethod
    def for_customer(cls, customer_id: int):
        """Sessions of the customer's logins (tenant scoping for ``engine.context.owned``)."""
        return cls.select().join(User).join(Contact).where(Contact.customer == customer_id)


class KnownDevice(BaseModel):
    """A browser a user signed in from before (the ``portico_device`` cookie, hashed)."""

    user = ForeignKeyField(User, backref="devices", on_delete="CASCADE")
    device_hash = CharField(max_length=64)
    user_agent = CharField(max_length=300, default="")
    first_seen_at = UTCDateTimeField(default=utcnow)
    last_seen_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("user", "device_hash"), True),)


class LoginGuard(BaseModel):
    """Failed sign-ins per email (PWD-3), in the database so every worker and host sees them.

    ``key`` is "customer:<email>" or "staff:<email>", for registered and unknown
    emails alike, so a lock never tells whether an email is registered.
    """

    key = CharField(max_length=300, unique=True)
    failures = IntegerField(default=0)
    locked_until = UTCDateTimeField(null=True)
    updated_at = UTCDateTimeField(default=utcnow, index=True)


class PasswordReset(BaseModel):
    """A reset link (PWD-1): one hour, once, and only while password and email are unchanged."""

    user = ForeignKeyField(User, backref="password_resets", on_delete="CASCADE")
    token_hash = CharField(max_length=64, unique=True)
    email = CharField(max_length=254)  # the address it was sent to
    password_changed_at = UTCDateTimeField()  # the user's stamp when it was issued
    reason = CharField(max_length=20, default="forgot")  # forgot, lockout
    created_at = UTCDateTimeField(default=utcnow)
    used_at = UTCDateTimeField(null=True)


class TwoFactor(BaseModel):
    """A user's TOTP authenticator (ACCT-6). ``last_step`` refuses a replayed code."""

    user = ForeignKeyField(User, backref="two_factor", unique=True, on_delete="CASCADE")
    secret = CharField(max_length=200)  # engine.security.seal(); see twofactor.seed()
    confirmed_at = UTCDateTimeField(null=True)  # null while being set up
    last_step = IntegerField(default=0)
    created_at = UTCDateTimeField(default=utcnow)

    SEALED_FIELDS = ("secret",)  # `portico reseal` moves it to a new secret key


class BackupCode(BaseModel):
    """A one-time 2FA backup code, stored as an HMAC under the secret key."""

    user = ForeignKeyField(User, backref="backup_codes", on_delete="CASCADE")
    code_hash = CharField(max_length=64, index=True)
    used_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)


class ApiKey(BaseModel):
    """A customer API key (API-1): shown once, kept as a hash, read-only or read-write."""

    customer = ForeignKeyField(Customer, backref="api_keys", on_delete="CASCADE")
    user = ForeignKeyField(User, backref="api_keys", on_delete="CASCADE")  # who made it
    name = CharField(max_length=100)
    prefix = CharField(max_length=16)  # the first characters, to recognise a key
    key_hash = CharField(max_length=64, unique=True)
    access = CharField(max_length=20, default="read")  # read, read_write
    expires_at = UTCDateTimeField()
    created_at = UTCDateTimeField(default=utcnow)
    last_used_at = UTCDateTimeField(null=True)
    last_used_ip = CharField(max_length=64, default="")
    revoked_at = UTCDateTimeField(null=True)

    class Meta:
        indexes = ((("customer", "id"), False),)

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset({"read", "write"}) if self.access == "read_write" else frozenset({"read"})

    def state(self, now=None) -> str:
        now = now or utcnow()
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "active"


class RateCounter(BaseModel):
    """A fixed-window rate-limit counter (the ``limits`` database storage)."""

    key = CharField(max_length=300, unique=True)
    count = IntegerField(default=0)
    expires_at = DoubleField(index=True)  # epoch seconds, as ``limits`` counts them


MODELS = (
    Session,
    KnownDevice,
    LoginGuard,
    PasswordReset,
    TwoFactor,
    BackupCode,
    ApiKey,
    RateCounter,
)
