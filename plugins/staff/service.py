"""Staff rules: sign-in, customer look-up, and impersonation with a one-time link."""

from __future__ import annotations

from datetime import timedelta

import falcon

from engine import audit
from engine.db import database, utcnow
from engine.errors import Problem, invalid
from engine.i18n import N_
from engine.models import Contact, Service, Site, User
from engine.notify import Notice, notify
from engine.security import new_token, token_hash
from plugins.identity.public import Session, sessions
from plugins.staff.models import Impersonation

LINK_VALID = timedelta(minutes=2)
INVALID_LINK = N_("This impersonation link has expired or was already used. Start a new one.")


def primary_contacts(customer_ids: list[int]) -> dict[int, Contact]:
    """Each customer's primary contact (one query for a page of customers)."""
    if not customer_ids:
        return {}
    rows = Contact.select().where(Contact.customer.in_(customer_ids) & Contact.is_primary)
    return {c.customer_id: c for c in rows}


def contacts_of(customer_id: int):
    """Contacts with their login (if any) attached as ``user``."""
    rows = list(
        Contact.select()
        .where(Contact.customer == customer_id)
        .order_by(Contact.is_primary.desc(), Contact.id)
    )
    users = User.of_contacts(c.id for c in rows)
    for c in rows:
        c.user = users.get(c.id)
        c.user_id = c.user.id if c.user else None
        c.has_login = bool(c.user and c.user.is_active)
    return rows


def sites_of(customer_id: int):
    return Site.select().where(Site.customer == customer_id).order_by(Site.id)


def services_of(customer_id: int):
    return Service.select().where(Service.customer == customer_id).order_by(Service.id)


def require_impersonator(ctx) -> None:
    if not ctx.principal.can("can_impersonate"):
        raise Problem(
            403,
            N_("You may not impersonate customers"),
            N_("Impersonation needs the can_impersonate or admin permission."),
            type="permission-denied",
        )


def start(app, ctx, contact_id, reason: str) -> tuple[str, Impersonation]:
    """IMP-1/2: a one-time link that opens ``contact_id``'s portal; returns (url, row)."""
    require_impersonator(ctx)
    contact = Contact.get_or_none(Contact.id == contact_id)
    if contact is None:
        raise invalid({"contact_id": [N_("No contact has this id.")]})
    user = User.of_contacts([contact.id]).get(contact.id)  # its own login, or a linked one
    if user is None or not user.is_active:
        raise invalid({"contact_id": [N_("This contact has no portal login to open.")]})
    token = new_token(32)
    now = utcnow()
    with database.atomic():
        row = Impersonation.create(
            staff=ctx.principal.staff_id,
            user=user.id,
            contact=contact.id,
            customer=contact.customer_id,
            reason=reason.strip(),
            token_hash=token_hash(token),
            created_at=now,
            link_expires_at=now + LINK_VALID,
        )
        audit.record(
            ctx,
            "impersonation.started",
            f"user:{user.id}",
            {"reason": row.reason, "impersonation_id": row.id},
            customer_id=contact.customer_id,
            user_id=user.id,
        )
        notify(
            app,
            Notice(
                kind="impersonation_started",
                key=f"impersonation:{row.id}",
                user_id=user.id,
                customer_id=contact.customer_id,
                category="security",
                sensitive=True,
                data={"reason": row.reason, "when": now.strftime("%Y-%m-%d %H:%M UTC")},
            ),
        )
    return app.url(f"/impersonate/{token}"), row


def open_link(app, ctx, token: str) -> tuple[str, Session]:
    """Spend a link: a new impersonation session (short idle timeout) for the customer's login."""
    if not token or len(token) > 200:
        raise Problem(410, INVALID_LINK)
    row = Impersonation.get_or_none(Impersonation.token_hash == token_hash(token))
    now = utcnow()
    if row is None or row.opened_at is not None or now > row.link_expires_at:
        raise Problem(410, INVALID_LINK)
    if not row.staff.is_active or not row.staff.has("can_impersonate"):
        raise Problem(410, INVALID_LINK)
    with database.atomic():
        claimed = (
            Impersonation.update(opened_at=now)
            .where((Impersonation.id == row.id) & Impersonation.opened_at.is_null())
            .execute()
        )
        if not claimed:
            raise Problem(410, INVALID_LINK)
        return sessions.create(
            app,
            ctx,
            "impersonation",
            user_id=row.user_id,
            staff_id=row.staff_id,
            impersonation_id=row.id,
            contact_id=row.contact_id,  # the account opened, also when it is a linked one
        )


def status(row: Impersonation) -> str:
    if row.opened_at is None:
        return "expired" if utcnow() > row.link_expires_at else "pending"
    live = Session.select().where(Session.impersonation_id == row.id).first()
    return "active" if live is not None and sessions.alive(live) else "ended"


def end(app, ctx, row: Impersonation) -> int:
    """End an impersonation from the staff side: its session stops at once."""
    if row.staff_id != ctx.principal.staff_id and not ctx.principal.can("admin"):
        raise falcon.HTTPNotFound(title=N_("Not found"))
    with database.atomic():
        return _close(ctx, row, "staff")


def _close(ctx, row: Impersonation, by: str) -> int:
    """Revoke ``row``'s sessions (audited for the customer) and spend its link if unopened."""
    ended = 0
    for s in Session.select().where(
        (Session.impersonation_id == row.id) & Session.revoked_at.is_null()
    ):
        sessions.revoke(s.id)
        ended += 1
    if ended:
        audit.record(
            ctx,
            "impersonation.ended",
            f"user:{row.user_id}",
            {"impersonation_id": row.id, "by": by},
            customer_id=row.customer_id,
            user_id=row.user_id,
        )
    # A link not yet opened can no longer be.
    Impersonation.update(link_expires_at=utcnow()).where(
        (Impersonation.id == row.id) & Impersonation.opened_at.is_null()
    ).execute()
    return ended


def sign_out(app, ctx, row: Session) -> int:
    """Staff sign-out: the staff session ends, and with it every impersonation the staff
    member has open or may still open (IMP-6); returns how many impersonation sessions ended."""
    staff_id, now = row.staff_id, utcnow()
    live = Session.select(Session.impersonation_id).where(
        (Session.kind == "impersonation")
        & (Session.staff == staff_id)
        & Session.revoked_at.is_null()
    )
    open_rows = Impersonation.select().where(
        (Impersonation.staff == staff_id)
        & (
            Impersonation.id.in_(live)
            | (Impersonation.opened_at.is_null() & (Impersonation.link_expires_at > now))
        )
    )
    with database.atomic():
        sessions.revoke(row.id)
        audit.record(ctx, "staff.logout", f"staff:{staff_id}")
        return sum(_close(ctx, imp, "staff_signed_out") for imp in open_rows)
