"""Who is asking: the ``authenticate_request`` implementation.

- ``Authorization: Bearer ptk_...``: a customer API key (scoped read or read-write).
- ``Authorization: Bearer <token>``: a session token from ``POST /api/v1/auth/login``
  (or ``/api/v1/staff/auth/login`` on staff paths).
- Otherwise the session cookie: ``portico_staff`` on staff paths (``/staff``,
  ``/api/v1/staff``), ``portico_session`` everywhere else. Keeping the two
  apart lets an agent's console stay signed in while an impersonation tab
  uses the customer cookie.
"""

from __future__ import annotations

from peewee import JOIN, fn

from engine import audit, roles
from engine.context import Principal
from engine.db import Prepared
from engine.errors import Problem
from engine.i18n import N_
from engine.middleware import UNSAFE
from engine.models import AuditEvent, Contact, Customer, LinkedContact, StaffUser, User
from plugins.identity import accounts, apikeys, sessions
from plugins.identity.models import Session


def bearer(req) -> str | None:
    header = req.get_header("Authorization") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def authenticate(app, req) -> Principal | None:
    kind = req.context.kind
    if kind.machine:  # webhooks, health, static files: nobody signs in there
        return None
    apikeys.refuse_in_query(req)
    staff_path = kind.staff
    token = bearer(req)
    via = "token"
    if token is not None and token.startswith(apikeys.KEY_PREFIX):
        return None if staff_path else _api_key_principal(req, token)
    if token is None:
        token = req.cookies.get(sessions.STAFF_COOKIE if staff_path else sessions.SESSION_COOKIE)
        via = "session"
    if not token:
        return None
    if staff_path:
        row = sessions.find(token, ("staff",))
    else:  # the session with its user, contact and customer: one round trip per request
        row = sessions.find(token, ("customer", "impersonation"), _SESSION_USER)
    if row is None:
        return None
    req.context.extra["session"] = row
    if row.kind == "staff":
        return _staff_principal(row, via)
    return _customer_principal(req, row, via)


def _staff_principal(row: Session, via: str) -> Principal | None:
    staff = StaffUser.get_or_none(StaffUser.id == row.staff_id)
    if staff is None or not staff.is_active:
        return None
    return Principal(
        kind="staff",
        staff_id=staff.id,
        via=via,
        session_id=row.id,
        permissions=frozenset(staff.permissions.split()),
    )


_USER = Prepared(
    lambda user_id: (
        User.select(User, Contact, Customer)
        .join(Contact)
        .join(Customer)
        .where(User.id == user_id)
        .limit(1)
    )
)


# The customer's newest audit event id rides along: "has anything changed" for caches such
# as the dashboard's, without a round trip of their own (ctx.extra["customer_version"]). So
# does an impersonating staff member's account (IMP-6: checked on every request; a customer's
# own session joins no row).
# SUP-2: the contact joined is the session's current account: its ``contact`` while the login
# is still linked to it (``linked_contact``), else the login's own; and whether the login has
# further accounts at all (the header's switcher loads them only then).
_Link = LinkedContact.alias("current_link")
_Links = LinkedContact.alias("any_link")
_SESSION_USER = Prepared(
    lambda digest: (
        Session.select(
            Session,
            User,
            Contact,
            Customer,
            StaffUser.id,
            StaffUser.is_active,
            StaffUser.permissions,
            AuditEvent.latest_id(Customer.id).alias("customer_version"),
            fn.EXISTS(_Links.select(_Links.id).where(_Links.user == User.id)).alias("linked"),
        )
        .join(User)
        .switch(Session)
        .join(
            _Link,
            JOIN.LEFT_OUTER,
            on=((_Link.user == Session.user) & (_Link.contact == Session.contact)),
        )
        .switch(User)
        .join(Contact, on=(Contact.id == fn.COALESCE(_Link.contact, User.contact)), attr="contact")
        .join(Customer)
        .switch(Session)
        .join(StaffUser, JOIN.LEFT_OUTER)
        .where(Session.token_hash == digest)
        .limit(1)
    )
)


def load_user(user_id: int) -> User | None:
    """The user with contact and customer, in one query."""
    return _USER.first(user_id)


def _customer_principal(req, row: Session, via: str) -> Principal | None:
    user = row.user  # joined by _SESSION_USER
    req.context.extra["customer_version"] = row.customer_version or 0
    if user is None or not user.is_active:
        return None
    if row.kind == "impersonation" and not _may_impersonate(row.staff):
        _end_impersonation(req.context.app, row)
        return None
    req.context.extra["customer_number"] = user.contact.customer.number
    req.context.extra["user"] = user
    if row.linked:
        req.context.extra["accounts"] = accounts.lister(req.context, user.id)
    principal = Principal(
        kind="customer",
        user_id=user.id,
        customer_id=user.contact.customer_id,
        contact_id=user.contact_id,
        session_id=row.id,
        via=via,
        impersonator_id=row.staff_id if row.kind == "impersonation" else None,
        locale=user.locale,
        timezone=user.timezone,
        role=roles.of(user.contact),
    )
    if principal.impersonated and req.method in UNSAFE:
        # IMP-3: every action under impersonation is on the record with both people,
        # even where a plugin records nothing of its own.
        req.context.principal = principal
        audit.record(
            req.context,
            "impersonation.action",
            req.path,
            {"method": req.method, "impersonation_id": row.impersonation_id},
        )
    return principal


def _may_impersonate(staff: StaffUser | None) -> bool:
    """IMP-6: the staff member behind an impersonation is still active and still allowed."""
    return (
        staff is not None
        and bool(staff.is_active)
        and staff.permissions is not None
        and staff.has("can_impersonate")
    )


def _end_impersonation(app, row: Session) -> None:
    """A staff member disabled or stripped of the permission mid-visit loses the customer's
    portal at once, for good (audited; the next request finds the session revoked)."""
    with app.database.atomic():
        sessions.revoke(row.id)
        audit.record_system(
            app,
            "impersonation.ended",
            f"user:{row.user_id}",
            {
                "impersonation_id": row.impersonation_id,
                "by": "system",
                "reason": "staff_not_allowed",
            },
            customer_id=row.user.contact.customer_id,
            user_id=row.user_id,
            staff_id=row.staff_id,
        )


def _api_key_principal(req, key: str) -> Principal:
    row = apikeys.resolve(key, req.context.ip)
    # The login as it acts for the key's customer (SUP-2: its own contact or a linked one).
    user = accounts.load_user_at(row.user_id, row.customer_id)
    if user is None:  # removed, or unlinked from the key's customer, since it was made
        raise Problem(
            401,
            N_("Unknown API key"),
            N_("Check the key, or generate a new one."),
            type="invalid-key",
        )
    req.context.extra["customer_number"] = user.contact.customer.number
    req.context.extra["user"] = user
    req.context.extra["api_key"] = row
    return Principal(
        kind="customer",
        user_id=user.id,
        customer_id=row.customer_id,
        contact_id=user.contact_id,
        via="api_key",
        scopes=row.scopes,
        locale=user.locale,
        timezone=user.timezone,
        role=roles.of(user.contact),
    )
