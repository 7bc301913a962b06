"""The core domain every plugin hangs on.

Customer → Contact → User (login identity; LinkedContact: its further accounts);
Customer → Site; Customer → Service → Product; StaffUser; AuditEvent; OutboxMessage (work to
enqueue).
Money is integer minor units with a currency; times are UTC.
"""

from __future__ import annotations

from datetime import timedelta

import peewee
from peewee import (
    BigAutoField,
    BooleanField,
    CharField,
    ForeignKeyField,
    IntegerField,
    TextField,
    fn,
)

from engine.db import BaseModel, CurrencyField, UTCDateTimeField, utcnow

CUSTOMER_KINDS = ("individual", "business")
SERVICE_STATUSES = ("active", "suspended", "expired", "cancelled")
SERVICE_TYPES = ("mobile", "broadband", "iptv", "prepaid", "landline", "other")
EXPIRING_SOON = timedelta(days=7)
#: The longest external id an operator may give a row (an account number, an MSISDN, a UUID).
EXTERNAL_ID_MAX = 100


class Synced(BaseModel):
    """A row the operator's systems also hold (INT-1): their ``external_id`` for it (unique,
    null for rows made only in Portico) and ``updated_at``, bumped by every ``save()`` so an
    ``updated_since`` sync sees the change. A bulk ``Model.update()`` must set it itself."""

    external_id = CharField(max_length=EXTERNAL_ID_MAX, null=True, unique=True)
    updated_at = UTCDateTimeField(default=utcnow, index=True)

    def save(self, force_insert=False, only=None):
        self.updated_at = utcnow()
        if only is not None:
            only = [*only, type(self).updated_at]
        return super().save(force_insert=force_insert, only=only)


class Customer(Synced):
    """A customer account. ``number`` is what the customer quotes to support (SUP-1)."""

    number = CharField(max_length=20, unique=True)
    name = CharField(max_length=200)
    kind = CharField(
        max_length=20,
        default="individual",
        constraints=[peewee.Check("kind in ('individual', 'business')")],
    )
    api_access = BooleanField(default=False)  # individuals the operator allows (API-1)
    created_at = UTCDateTimeField(default=utcnow)


class Contact(Synced):
    """A person linked to a customer account (ACCT-2). ``role`` is their job ("Accounts");
    what they may do on the account is ``is_primary`` and ``can_manage`` (``engine.roles``)."""

    customer = ForeignKeyField(Customer, backref="contacts", on_delete="CASCADE")
    first_name = CharField(max_length=100)
    last_name = CharField(max_length=100, default="")
    email = CharField(max_length=254)
    phone = CharField(max_length=32, default="")
    role = CharField(max_length=50, default="")
    is_primary = BooleanField(default=False)
    can_manage = BooleanField(default=False)  # granted by the primary contact (ACCT-7)
    created_at = UTCDateTimeField(default=utcnow)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Site(Synced):
    """An address where the customer takes service (ACCT-2)."""

    customer = ForeignKeyField(Customer, backref="sites", on_delete="CASCADE")
    label = CharField(max_length=100, default="")
    line1 = CharField(max_length=200)
    line2 = CharField(max_length=200, default="")
    city = CharField(max_length=100)
    postcode = CharField(max_length=20, default="")
    country = CharField(max_length=2, default="GB")


class User(BaseModel):
    """A customer's login identity, linked to one contact.

    A person with several customer accounts signs in once and switches between them (SUP-2):
    the further accounts are ``LinkedContact`` rows, and the session names the current one.
    In a request, ``ctx.extra["user"].contact`` is the contact of the current account; such a
    ``User`` is never ``save()``d (logins change by ``User.update()``).
    """

    contact = ForeignKeyField(Contact, backref="users", unique=True, on_delete="CASCADE")
    email = CharField(max_length=254, unique=True)  # stored lower-case
    password_hash = CharField(max_length=255, default="")
    locale = CharField(max_length=10, default="")
    timezone = CharField(max_length=64, default="")
    is_active = BooleanField(default=True)
    email_verified_at = UTCDateTimeField(null=True)
    password_changed_at = UTCDateTimeField(default=utcnow)
    created_at = UTCDateTimeField(default=utcnow)

    @property
    def customer_id(self) -> int:
        return self.contact.customer_id

    @classmethod
    def of_contacts(cls, contact_ids) -> dict[int, User]:
        """The login of each of these contacts that has one: its own, or the login linked to
        it (SUP-2, ``LinkedContact``); by contact id."""
        ids = list(contact_ids)
        if not ids:
            return {}
        found = {u.contact_id: u for u in cls.select().where(cls.contact.in_(ids))}
        links = (
            LinkedContact.select(LinkedContact, cls).join(cls).where(LinkedContact.contact.in_(ids))
        )
        for link in links:
            found[link.contact_id] = link.user
        return found


class LinkedContact(BaseModel):
    """A further customer account a login speaks for (SUP-2): its contact at that customer.

    A login is made for one contact, its home (``User.contact``); the same person at another
    customer is one row here (the operator links it: docs/identity.md, "Several customer
    accounts"). A contact has at most one login: its own ``User``, or one row here.
    """

    user = ForeignKeyField(User, backref="linked_contacts", on_delete="CASCADE")
    contact = ForeignKeyField(Contact, unique=True, backref="login_links", on_delete="CASCADE")
    created_at = UTCDateTimeField(default=utcnow)


class StaffUser(BaseModel):
    """An operator's support agent or administrator.

    ``permissions`` is a space-separated set: ``admin``, ``can_impersonate``, ...
    """

    email = CharField(max_length=254, unique=True)
    name = CharField(max_length=200)
    password_hash = CharField(max_length=255, default="")
    permissions = CharField(max_length=500, default="")
    is_active = BooleanField(default=True)
    created_at = UTCDateTimeField(default=utcnow)

    def has(self, permission: str) -> bool:
        perms = set(self.permissions.split())
        return "admin" in perms or permission in perms


class Product(Synced):
    """A plan a service runs on. ``compatible_plans``: the external ids of the products a
    service on this plan may switch to (the operator API's change-plan, issue 17)."""

    code = CharField(max_length=50, unique=True)
    name = CharField(max_length=200)
    service_type = CharField(max_length=20, default="mobile")
    monthly_fee = IntegerField(default=0)
    currency = CurrencyField(default="GBP")
    period_days = IntegerField(default=30)
    allow_cancel = BooleanField(default=False)  # self-service cancellation (SVC-4)
    allow_modify = BooleanField(default=False)
    description = TextField(default="")
    compatible_plans = peewee.JSONField(default=list)


class Service(Synced):
    """A service a customer takes (SVC-1)."""

    customer = ForeignKeyField(Customer, backref="services", on_delete="CASCADE")
    product = ForeignKeyField(Product, backref="services")
    site = ForeignKeyField(Site, null=True, backref="services", on_delete="SET NULL")
    service_type = CharField(max_length=20, default="mobile")
    name = CharField(max_length=200)  # readable: "Mobile - +44 7700 900123"
    identifier = CharField(max_length=100, default="")  # MSISDN, line id, ...
    status = CharField(max_length=20, default="active")
    suspended_reason = CharField(max_length=200, default="")
    created_at = UTCDateTimeField(default=utcnow)
    period_start = UTCDateTimeField(default=utcnow)  # last renewal (USE-2)
    renews_at = UTCDateTimeField(null=True)
    expires_at = UTCDateTimeField(null=True)
    monthly_fee = IntegerField(default=0)
    currency = CurrencyField(default="GBP")
    auto_renew = BooleanField(default=True)
    esim_activation_code = CharField(max_length=255, default="")  # LPA:1$... (MOB-2)
    # SVC-3: the plan (a product's external id) a downgrade switches to at the next renewal
    pending_plan = CharField(max_length=100, null=True)

    class Meta:
        indexes = ((("customer", "id"), False),)

    def indicator(self, now=None) -> str:
        """The SVC-2 status light: active, expiring, suspended, expired or cancelled."""
        now = now or utcnow()
        if self.status == "cancelled":
            return "cancelled"
        if self.status == "expired" or (self.expires_at and self.expires_at <= now):
            return "expired"
        if self.status == "suspended":
            return "suspended"
        upcoming = [d for d in (self.renews_at, self.expires_at) if d]
        if upcoming and min(upcoming) - now < EXPIRING_SOON:
            return "expiring"
        return "active"


class AuditEvent(BaseModel):
    """One line of the activity log (ACCT-5, IMP-3): who, what, when, from where."""

    id = BigAutoField()  # written by every change: 64-bit (OPS-7, core migration 0007)
    customer = ForeignKeyField(Customer, null=True, backref="audit_events", on_delete="CASCADE")
    user = ForeignKeyField(User, null=True, on_delete="SET NULL")
    staff = ForeignKeyField(StaffUser, null=True, on_delete="SET NULL")
    impersonated = BooleanField(default=False)
    action = CharField(max_length=100)
    target = CharField(max_length=200, default="")
    data = peewee.JSONField(default=dict)
    ip = CharField(max_length=64, default="")
    user_agent = CharField(max_length=300, default="")
    created_at = UTCDateTimeField(default=utcnow, index=True)

    class Meta:
        indexes = ((("customer", "id"), False),)

    @classmethod
    def latest_id(cls, customer):
        """Select the id of the customer's newest event: "has anything changed since?" for caches.

        Every change writes an event, so a cache keyed on this id is never stale.
        ``customer`` is an id or a column (``Customer.id``, to use it as a subquery).
        The ``(customer, id)`` index answers it without reading a row.
        """
        return cls.select(fn.MAX(cls.id)).where(cls.customer == customer)


class OutboxMessage(BaseModel):
    """Work enqueued with a business change, written in the same transaction.

    The relay moves rows to the broker after commit; a crash or a broker outage
    leaves them here to be sent later. A worker marks the row done when its
    message has finished (or was given up); a row sent but not done by
    ``redeliver_at`` was lost by the broker and is sent again (OPS-6).
    """

    message_id = CharField(max_length=36, unique=True)
    actor = CharField(max_length=200)
    queue = CharField(max_length=100, default="default")
    payload = peewee.JSONField()
    delay_ms = IntegerField(default=0)
    created_at = UTCDateTimeField(default=utcnow)
    sent_at = UTCDateTimeField(null=True, index=True)
    attempts = IntegerField(default=0)
    last_error = TextField(default="")
    done_at = UTCDateTimeField(null=True, index=True)
    redeliver_at = UTCDateTimeField(null=True, index=True)  # cleared when done


MODELS = (
    Customer,
    Contact,
    Site,
    User,
    LinkedContact,
    StaffUser,
    Product,
    Service,
    AuditEvent,
    OutboxMessage,
)
