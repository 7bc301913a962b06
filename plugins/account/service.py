"""Account rules both faces call: details, email change, password change, contacts, support."""

from __future__ import annotations

from datetime import timedelta

from engine import audit, roles
from engine.context import get_owned, owned
from engine.db import database, utcnow
from engine.errors import Problem, invalid
from engine.events import emit
from engine.i18n import N_
from engine.models import Contact, User
from engine.notify import Notice, notify
from engine.security import hash_password, new_token, token_hash, verify_password
from plugins.identity.public import (
    guards,
    limiter,
    lockout,
    password_errors,
    sessions,
    twofactor,
)
from plugins.account.models import EmailChange
from plugins.account.schemas import PROTECTED

EMAIL_LINK_VALID = timedelta(hours=24)
EMAIL_LINK_INVALID = N_(
    "This confirmation link has expired or was already used. Ask for a new one."
)

#: LIM-1: what only staff can do, shown on the support page and in the API.
STAFF_ONLY = [
    {"id": "customer_type", "title": N_("Change the customer type (individual or business)")},
    {"id": "move_services", "title": N_("Move services between customer accounts")},
    {
        "id": "cancel_services",
        "title": N_("Cancel a service, unless its product allows self-service cancellation"),
    },
    {"id": "disputes", "title": N_("Dispute an invoice")},
    {"id": "refunds", "title": "Refunds"},
    {
        "id": "primary_contact",
        "title": N_("Change the primary contact, or add and remove contacts and sites"),
    },
    {
        "id": "configuration",
        "title": N_("Complex service configuration beyond add-ons and top-ups"),
    },
    {"id": "void", "title": N_("Void invoices or transactions")},
]


def update_details(app, ctx, user: User, changes: dict) -> dict:
    """Apply phone, language and time-zone changes; returns what changed (old → new)."""
    changed = {}
    contact = user.contact
    with database.atomic():
        if "phone" in changes and changes["phone"] != contact.phone:
            changed["phone"] = [contact.phone, changes["phone"]]
            Contact.update(phone=changes["phone"], updated_at=utcnow()).where(
                Contact.id == contact.id
            ).execute()
            contact.phone = changes["phone"]
        for name in ("locale", "timezone"):
            if name in changes and changes[name] != getattr(user, name):
                changed[name] = [getattr(user, name), changes[name]]
                User.update({getattr(User, name): changes[name]}).where(
                    User.id == user.id
                ).execute()
                setattr(user, name, changes[name])
        if changed:
            audit.record(ctx, "account.updated", f"user:{user.id}", {"changed": changed})
            emit(
                ctx.app,
                "contact.changed",
                {
                    "contact_id": contact.id,
                    "contact_external_id": contact.external_id,
                    "customer_id": contact.customer_id,
                    "changed": changed,
                },
                customer_id=contact.customer_id,
            )
    return changed


def request_email_change(app, ctx, user: User, new_email: str, password: str) -> EmailChange:
    """Send a confirmation link to the new address and a notice to the old one."""
    guards.require_account_holder(ctx)
    limiter(app).hit("reset", "email-change", str(user.id))
    if not verify_password(user.password_hash, password):
        raise invalid({"password": [N_("This is not your current password.")]})
    if new_email == user.email:
        raise invalid({"email": [N_("This is already your email address.")]})
    token = new_token(32)
    with database.atomic():
        # Only the newest request counts.
        EmailChange.delete().where(
            (EmailChange.user == user.id) & EmailChange.used_at.is_null()
        ).execute()
        row = EmailChange.create(
            user=user.id, old_email=user.email, new_email=new_email, token_hash=token_hash(token)
        )
        audit.record(ctx, "email.change_requested", f"user:{user.id}", {"new_email": new_email})
        # SEC-1: the link must reach the address it verifies, so it is addressed bare (no
        # user_id: no other channel of the login's can carry it); the notice of the request
        # goes to the login's address on record.
        notify(
            app,
            Notice(
                kind="email_change_verify",
                key=f"email_change:{row.id}",
                email=new_email,
                locale=user.locale or None,
                category="security",
                customer_id=user.contact.customer_id,
                sensitive=True,
                data={
                    "url": app.url(f"/account/email/verify?token={token}"),
                    "hours": int(EMAIL_LINK_VALID.total_seconds() // 3600),
                },
            ),
        )
        notify(
            app,
            Notice(
                kind="email_change_requested",
                key=f"email_change_notice:{row.id}",
                user_id=user.id,
                category="security",
                sensitive=True,
                customer_id=user.contact.customer_id,
                data={"new_email": new_email},
            ),
        )
    return row


def pending_email(user: User) -> str | None:
    row = (
        EmailChange.select()
        .where(
            (EmailChange.user == user.id)
            & EmailChange.used_at.is_null()
            & (EmailChange.created_at > utcnow() - EMAIL_LINK_VALID)
        )
        .order_by(EmailChange.id.desc())
        .first()
    )
    return row.new_email if row else None


def valid_email_change(token: str) -> EmailChange | None:
    if not token or len(token) > 200:
        return None
    row = EmailChange.get_or_none(EmailChange.token_hash == token_hash(token))
    if row is None or row.used_at is not None or utcnow() - row.created_at > EMAIL_LINK_VALID:
        return None
    if row.user.email != row.old_email or not row.user.is_active:
        return None  # the address changed since: this link is stale
    return row


def confirm_email_change(app, ctx, token: str) -> User:
    """Switch to the new address; the old one is told. Raises 422 with a reason."""
    guards.require_account_holder(ctx)
    row = valid_email_change(token)
    if row is None:
        raise invalid({"token": [EMAIL_LINK_INVALID]})
    if User.select().where((User.email == row.new_email) & (User.id != row.user_id)).exists():
        raise invalid({"email": [N_("This email address is already used by another account.")]})
    user, now = row.user, utcnow()
    with database.atomic():
        spent = (
            EmailChange.update(used_at=now)
            .where((EmailChange.id == row.id) & EmailChange.used_at.is_null())
            .execute()
        )
        if not spent:
            raise invalid({"token": [EMAIL_LINK_INVALID]})
        User.update(email=row.new_email, email_verified_at=now).where(User.id == user.id).execute()
        if user.contact.email.lower() == row.old_email:
            Contact.update(email=row.new_email, updated_at=utcnow()).where(
                Contact.id == user.contact_id
            ).execute()
        lockout.lift(lockout.guard_key("customer", row.old_email))
        audit.record(
            ctx,
            "email.changed",
            f"user:{user.id}",
            {"old_email": row.old_email, "new_email": row.new_email},
            customer_id=user.contact.customer_id,
            user_id=user.id,
        )
        notify(
            app,
            Notice(
                kind="email_changed",
                key=f"email_changed:{row.id}",
                email=row.old_email,
                category="security",
                sensitive=True,
                customer_id=user.contact.customer_id,
                locale=user.locale or None,
                data={"new_email": row.new_email},
            ),
        )
    return User.get_by_id(user.id)


def change_password(app, ctx, user: User, current: str, new: str, end_others: bool) -> int:
    """ACCT-4: the current password, then the policy; returns how many sessions were ended."""
    guards.require_account_holder(ctx)
    limiter(app).hit("login_account", "password-change", str(user.id))
    if not verify_password(user.password_hash, current):
        raise invalid({"current_password": [N_("This is not your current password.")]})
    errors = password_errors(app, new, user.email, field="new_password")
    if not errors and current == new:
        errors = {"new_password": [N_("Choose a password different from the current one.")]}
    if errors:
        raise invalid(errors)
    now = utcnow()
    with database.atomic():
        User.update(password_hash=hash_password(new), password_changed_at=now).where(
            User.id == user.id
        ).execute()
        ended = 0
        if end_others:
            ended = sessions.sign_out_everywhere(
                app, ctx, user, "password_change", keep=ctx.principal.session_id
            )
        audit.record(ctx, "password.changed", f"user:{user.id}", {"ended_other_sessions": ended})
        notify(
            app,
            Notice(
                kind="password_changed",
                key=f"password_changed:{user.id}:{now.isoformat()}",
                user_id=user.id,
                customer_id=user.contact.customer_id,
                category="security",
                sensitive=True,
                data={"when": now.strftime("%Y-%m-%d %H:%M UTC"), "ip": ctx.ip, "how": "change"},
            ),
        )
    return ended


def account_view(user: User) -> dict:
    contact = user.contact
    return {
        "customer": contact.customer,
        "contact": contact,
        "email": user.email,
        "email_verified": user.email_verified_at is not None,
        "pending_email": pending_email(user),
        "phone": contact.phone,
        "locale": user.locale,
        "timezone": user.timezone,
        "two_factor": twofactor.enabled(user),
        "read_only": sorted(k for k in PROTECTED if k != "password"),
    }


# -- contacts and their roles (ACCT-7) ---------------------------------------------------


def contacts_query(ctx):
    return owned(Contact, ctx.require_customer()).order_by(Contact.is_primary.desc(), Contact.id)


def with_logins(ctx, contacts: list[Contact]) -> list[Contact]:
    """Attach each contact's role (``access``) and ``login`` (email, active, 2FA) where the
    viewer may see it: their own, or everyone's with the ``see_logins`` power."""
    everyone = roles.may(ctx.principal, "see_logins")
    users = User.of_contacts(c.id for c in contacts)
    for c in contacts:
        c.access, user = roles.of(c), users.get(c.id)
        shown = user if everyone or c.id == ctx.principal.contact_id else None
        c.login = (
            {
                "email": shown.email,
                "active": shown.is_active,
                "two_factor": twofactor.enabled(shown),
            }
            if shown is not None
            else None
        )
        c.can_sign_out = (
            shown is not None
            and shown.is_active
            and c.id != ctx.principal.contact_id
            and roles.may_act_over(ctx.principal, "end_sessions", c)
        )
    return contacts


def manageable(ctx, contact_id) -> Contact:
    """The contact whose "manage" the viewer may change: only the primary contact, in person
    (403), only another contact of the account (404 for anyone else's), not the primary (409)."""
    guards.require_account_holder(ctx)
    roles.require(ctx.principal, "grant_manage")
    contact = get_owned(Contact, contact_id, ctx)
    if contact.is_primary:
        raise Problem(
            409, N_("The primary contact manages the account already"), type="contact-is-primary"
        )
    return contact


def set_manage(app, ctx, contact_id, grant: bool) -> Contact:
    """The primary contact grants (or takes back) "manage" to another contact; audited."""
    contact = manageable(ctx, contact_id)
    if contact.can_manage != grant:
        with database.atomic():
            Contact.update(can_manage=grant, updated_at=utcnow()).where(
                Contact.id == contact.id
            ).execute()
            audit.record(
                ctx,
                "contact.manage_granted" if grant else "contact.manage_revoked",
                f"contact:{contact.id}",
                {"name": contact.full_name},
            )
        contact.can_manage = grant
    return with_logins(ctx, [contact])[0]


def sign_out_contact(app, ctx, contact_id) -> int:
    """End every session of another contact's login (a manager over members, the primary over
    everyone); returns how many were ended. Your own: every session but this one."""
    guards.require_account_holder(ctx)
    contact = get_owned(Contact, contact_id, ctx)
    roles.require_over(ctx.principal, "end_sessions", contact)
    user = User.of_contacts([contact.id]).get(contact.id)  # its own login, or a linked one
    if user is None:
        raise Problem(409, N_("This contact has no portal login"), type="no-login")
    keep = ctx.principal.session_id if user.id == ctx.principal.user_id else None
    with database.atomic():
        ended = sessions.revoke_user_sessions(user.id, keep=keep)
        audit.record(ctx, "contact.signed_out", f"contact:{contact.id}", {"sessions": ended})
    return ended
