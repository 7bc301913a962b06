"""Password reset links (PWD-1): valid one hour, once, and only while nothing changed.

A link stops working when it is used, after 3600 seconds, or as soon as the
password or the email address changes. Completing a reset ends every session
of the login (SEC-4), removes its push subscriptions and, if the operator says
so, revokes its API keys (``[security]`` settings). It signs nobody in:
the customer then signs in with the new password and, if 2FA is on, a code,
so a reset is never a way around the second factor.
"""

from __future__ import annotations

from datetime import timedelta

from engine import audit
from engine.db import database, utcnow
from engine.i18n import N_
from engine.models import User
from engine.notify import Notice, notify
from engine.security import hash_password, new_token, token_hash
from plugins.identity import apikeys, lockout, sessions
from plugins.identity.models import PasswordReset

VALID_FOR = timedelta(hours=1)
SENT_MESSAGE = N_(
    "If an account uses this email, we have sent it a link to reset the password. "
    "The link works once, for one hour."
)


def find_user(email: str) -> User | None:
    return User.get_or_none((User.email == email.strip().lower()) & (User.is_active == True))  # noqa: E712


def issue(app, user: User, reason: str = "forgot") -> str:
    """Create a link and email it (inside the caller's transaction); returns the token."""
    token = new_token(32)
    row = PasswordReset.create(
        user=user.id,
        token_hash=token_hash(token),
        email=user.email,
        password_changed_at=user.password_changed_at,
        reason=reason,
    )
    notify(
        app,
        Notice(
            kind="password_reset",
            key=f"password_reset:{row.id}",
            user_id=user.id,
            customer_id=user.contact.customer_id,
            category="security",
            sensitive=True,
            data={
                "url": app.url(f"/password/reset?token={token}"),
                "minutes": int(VALID_FOR.total_seconds() // 60),
                "reason": reason,
            },
        ),
    )
    return token


def request_reset(app, email: str) -> None:
    """``Forgot password``: the same quiet answer, and the same work, for any email.

    APPSEC: the request only queues ``send_reset_link`` (one outbox row), whether or not
    the email is registered; looking the user up and writing the link happen in the
    worker. Doing them here made a registered email answer measurably slower.
    """
    with database.atomic():
        from plugins.identity import tasks as identity_tasks  # lazily: it imports this module

        app.tasks.enqueue(identity_tasks.send_reset_link, email=email.strip().lower()[:254])


def send_reset_link(app, email: str) -> bool:
    """The worker's half of ``request_reset``: a link for a registered, active user."""
    user = find_user(email)
    if user is None:
        return False
    with database.atomic():
        issue(app, user)
    return True


def valid(token: str) -> PasswordReset | None:
    """The reset behind ``token`` if it may still be used."""
    if not token or len(token) > 200:
        return None
    row = PasswordReset.get_or_none(PasswordReset.token_hash == token_hash(token))
    if row is None or row.used_at is not None:
        return None
    if utcnow() - row.created_at > VALID_FOR:
        return None
    user = row.user
    if (
        not user.is_active
        or user.email != row.email
        or user.password_changed_at != row.password_changed_at
    ):
        return None
    return row


INVALID_MESSAGE = N_("This reset link has expired or was already used. Ask for a new one.")


def complete(app, ctx, row: PasswordReset, password: str) -> bool:
    """Set the new password, spend the link, lift the lock, sign out everywhere (SEC-4)."""
    user = row.user
    now = utcnow()
    customer_id = user.contact.customer_id
    with database.atomic():
        spent = (
            PasswordReset.update(used_at=now)
            .where((PasswordReset.id == row.id) & PasswordReset.used_at.is_null())
            .execute()
        )
        if not spent:
            return False  # a concurrent request used it first
        User.update(password_hash=hash_password(password), password_changed_at=now).where(
            User.id == user.id
        ).execute()
        lockout.lift(lockout.guard_key("customer", user.email))
        ended = sessions.sign_out_everywhere(app, ctx, user, "password_reset")
        keys = []
        if app.settings.security.reset_revokes_api_keys:
            keys = apikeys.revoke_made_by(user.id)
        for key in keys:
            audit.record(
                ctx,
                "api_key.revoked",
                f"api_key:{key.id}",
                {"name": key.name, "prefix": key.prefix, "reason": "password_reset"},
                customer_id=customer_id,
                user_id=user.id,
            )
        audit.record(
            ctx,
            "password.reset",
            f"user:{user.id}",
            {"sessions_ended": ended, "api_keys_revoked": len(keys)},
            customer_id=customer_id,
            user_id=user.id,
        )
        notify(
            app,
            Notice(
                kind="password_changed",
                key=f"password_changed:{user.id}:{now.isoformat()}",
                user_id=user.id,
                customer_id=customer_id,
                category="security",
                sensitive=True,
                data={"when": now.strftime("%Y-%m-%d %H:%M UTC"), "ip": ctx.ip, "how": "reset"},
            ),
        )
    return True
