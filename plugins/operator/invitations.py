"""Portal invitations (INT-2): a contact gets a login by an emailed link, never a password
passed on a command line.

The operator API asks for one (``portal_access`` on the contact upsert, or ``POST
.../contacts/{id}/invitation``). The link works once, for ``[operator] invitation_days``,
while it is the contact's newest (sending again revokes the one before) and the contact's
address is the one it was sent to. Only the token's hash is stored, as for password resets.
Accepting it (``/invitation``) sets the password under the same rules as a reset, creates
the login, signs it in and, if asked, goes on to the 2FA set-up.

SUP-2: when a login already uses the contact's address (the same person at another
customer), the link adds this contact's customer to that login instead: no new password,
no sign-in (the person signs in as always, with their second factor, and switches accounts
in the header). The link proves the address is theirs, as a password-reset link would.
"""

from __future__ import annotations

from datetime import timedelta

from engine import audit
from engine.db import database, locked_transaction, utcnow
from engine.errors import Problem
from engine.i18n import N_
from engine.models import Contact, User
from engine.notify import Notice, notify
from engine.security import hash_password, new_token, token_hash
from engine import upserts as rules
from plugins.identity.public import accounts
from plugins.operator.models import Invitation

INVALID_MESSAGE = (  # the page says it in the template, translated
    N_(
        "This invitation link has expired, was already used or was replaced by a newer one. "
        "Ask your provider to send a new invitation."
    )
)


def live(contact_id: int):
    """The contact's invitations that may still be used."""
    return Invitation.select().where(
        (Invitation.contact == contact_id)
        & Invitation.used_at.is_null()
        & Invitation.revoked_at.is_null()
        & (Invitation.expires_at > utcnow())
    )


def has_login(contact_id: int) -> bool:
    """Whether a login speaks for the contact: its own, or a linked one (SUP-2)."""
    return contact_id in User.of_contacts([contact_id])


def portal_state(contact: Contact) -> str:
    """``active`` (a login), ``invited`` (a live invitation) or ``none``."""
    if has_login(contact.id):
        return "active"
    return "invited" if live(contact.id).exists() else "none"


def send(app, ctx, contact: Contact) -> Invitation:
    """A new invitation emailed to the contact (in the caller's transaction); the ones
    before stop working. 409 if the contact already has a login."""
    if has_login(contact.id):
        raise Problem(
            409,
            N_("This contact already has a portal login"),
            N_("They sign in with it, or reset its password from the sign-in page."),
            type="has-login",
        )
    email = contact.email.strip().lower()
    joining = login_for(email)
    if joining is not None and not may_join(joining, contact):
        raise Problem(
            409,
            N_("Another login uses this email address"),
            N_(
                "That login cannot take this contact: it is disabled, or already has a contact "
                "at this customer. Give the contact their own address before inviting them."
            ),
            type="email-taken",
        )
    now = utcnow()
    _revoke_live(contact.id, now)
    token = new_token(32)
    days = app.settings.plugin("operator")["invitation_days"]
    row = Invitation.create(
        contact=contact.id,
        token_hash=token_hash(token),
        email=email,
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    notify(
        app,
        Notice(
            kind="invitation",
            key=f"invitation:{row.id}",
            email=email,
            customer_id=contact.customer_id,
            sensitive=True,  # it carries the link: email only, to this address alone
            data={
                "url": app.url(f"/invitation?token={token}"),
                "days": days,
                "first_name": contact.first_name,
                "existing_login": joining is not None,  # SUP-2: it adds an account to it
                "customer_name": contact.customer.name,
            },
        ),
    )
    audit.record(
        ctx,
        "invitation.sent",
        f"contact:{contact.id}",
        {
            "invitation": row.id,
            "email": email,
            "expires_at": row.expires_at.isoformat(),
            "existing_login": joining is not None,
        },
        customer_id=contact.customer_id,
    )
    return row


def _revoke_live(contact_id: int, now) -> int:
    return (
        Invitation.update(revoked_at=now)
        .where(
            (Invitation.contact == contact_id)
            & Invitation.used_at.is_null()
            & Invitation.revoked_at.is_null()
        )
        .execute()
    )


def revoke(ctx, contact: Contact) -> int:
    """Revoke the contact's pending invitations (audited); how many there were."""
    with database.atomic():
        done = _revoke_live(contact.id, utcnow())
        if done:
            audit.record(
                ctx,
                "invitation.revoked",
                f"contact:{contact.id}",
                {"revoked": done},
                customer_id=contact.customer_id,
            )
    return done


def upsert_contact(ctx, external_id: str, values: dict) -> rules.Upserted:
    """The contact upsert plus ``portal_access``, in one transaction: true invites a contact
    with neither a login nor a live invitation; false revokes a pending invitation."""
    access = values.pop("portal_access", None)
    with locked_transaction():
        done = rules.upsert_contact(ctx, external_id, values)
        contact = done.row
        if access and not has_login(contact.id) and not live(contact.id).exists():
            send(ctx.app, ctx, contact)
        elif access is False:
            revoke(ctx, contact)
    return done


def valid(token: str) -> Invitation | None:
    """The invitation behind ``token`` if it may still be used."""
    if not token or len(token) > 200:
        return None
    row = Invitation.get_or_none(Invitation.token_hash == token_hash(token))
    if row is None or row.used_at is not None or row.revoked_at is not None:
        return None
    if row.expires_at <= utcnow():
        return None
    contact = row.contact
    if contact.email.strip().lower() != row.email or has_login(contact.id):
        return None
    joining = login_for(row.email)
    if joining is not None and not may_join(joining, contact):
        return None  # another login took the address meanwhile: no IntegrityError later
    return row


def login_for(email: str) -> User | None:
    """The login that uses ``email`` already, if any (SUP-2: the link then joins it)."""
    return User.get_or_none(User.email == email.strip().lower())


def may_join(user: User, contact: Contact) -> bool:
    """Whether ``contact`` may become another account of ``user`` (SUP-2): an active login
    with no contact at that customer yet (one login, one contact per customer)."""
    return bool(user.is_active) and accounts.contact_at(user.id, contact.customer_id) is None


def accept_join(ctx, row: Invitation) -> User | None:
    """Spend the link and add the contact's customer to the login with its address (audited:
    ``invitation.accepted`` and ``login.linked``); None if it was spent or cannot join."""
    contact = row.contact
    now = utcnow()
    with locked_transaction():
        spent = (
            Invitation.update(used_at=now)
            .where(
                (Invitation.id == row.id)
                & Invitation.used_at.is_null()
                & Invitation.revoked_at.is_null()
            )
            .execute()
        )
        user = login_for(row.email)
        if not spent or has_login(contact.id) or user is None or not may_join(user, contact):
            return None  # the link is spent either way: it cannot be used again
        accounts.link(ctx, user, contact)
        audit.record(
            ctx,
            "invitation.accepted",
            f"user:{user.id}",
            {"invitation": row.id, "contact": contact.id, "existing_login": True},
            customer_id=contact.customer_id,
            user_id=user.id,
        )
    return user


def accept(ctx, row: Invitation, password: str) -> User | None:
    """Spend the link and create the login (audited); None if it was spent meanwhile."""
    contact = row.contact
    now = utcnow()
    with locked_transaction():
        spent = (
            Invitation.update(used_at=now)
            .where(
                (Invitation.id == row.id)
                & Invitation.used_at.is_null()
                & Invitation.revoked_at.is_null()
            )
            .execute()
        )
        if not spent or has_login(contact.id):
            return None
        user = User.create(
            contact=contact.id,
            email=row.email,
            password_hash=hash_password(password),
            email_verified_at=now,  # the link reached this address
            password_changed_at=now,
        )
        audit.record(
            ctx,
            "invitation.accepted",
            f"user:{user.id}",
            {"invitation": row.id, "contact": contact.id},
            customer_id=contact.customer_id,
            user_id=user.id,
        )
    return user
