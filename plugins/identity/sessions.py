"""Server-side sessions: a 256-bit random token in an HttpOnly cookie or a bearer header.

Only the token's SHA-256 is stored, so a database leak signs nobody in. A new
token is issued at login and again after the second factor (no fixation).
Sessions end after ``security.session_idle_minutes`` without a request, or
``security.session_absolute_hours`` after sign-in, whichever comes first;
impersonation uses the shorter ``security.impersonation_idle_minutes``.
"""

from __future__ import annotations

from datetime import timedelta

import falcon

from engine.db import Prepared, utcnow
from engine.security import new_token, token_hash
from plugins.identity.models import Session

SESSION_COOKIE = "portico_session"
STAFF_COOKIE = "portico_staff"
DEVICE_COOKIE = "portico_device"
OTP_MINUTES = 10  # time to type the second factor after the password
# PERF: write last_seen_at at most this often; idle timeouts are minutes long.
TOUCH_EVERY = timedelta(seconds=30)


def create(
    app,
    ctx,
    kind: str,
    *,
    user_id=None,
    staff_id=None,
    impersonation_id=None,
    next_path: str = "",
    contact_id=None,
) -> tuple[str, Session]:
    """Start a session; returns (token, row). The token is never stored.

    ``contact_id``: the customer account it acts for, when not the login's own (SUP-2)."""
    sec = app.settings.security
    now = utcnow()
    idle = sec.impersonation_idle_minutes if kind == "impersonation" else sec.session_idle_minutes
    absolute = timedelta(hours=sec.session_absolute_hours)
    if kind == "otp":
        idle, absolute = OTP_MINUTES, timedelta(minutes=OTP_MINUTES)
    token = new_token(32)
    row = Session.create(
        token_hash=token_hash(token),
        kind=kind,
        user=user_id,
        staff=staff_id,
        impersonation_id=impersonation_id,
        contact=contact_id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + absolute,
        idle_seconds=idle * 60,
        ip=ctx.ip,
        user_agent=ctx.user_agent,
        next_path=next_path,
    )
    return token, row


def alive(row: Session, now=None) -> bool:
    now = now or utcnow()
    return (
        row.revoked_at is None
        and now < row.expires_at
        and now - row.last_seen_at < timedelta(seconds=row.idle_seconds)
    )


_BY_HASH = Prepared(lambda digest: Session.select().where(Session.token_hash == digest).limit(1))


def find(token: str | None, kinds: tuple[str, ...], lookup: Prepared = _BY_HASH) -> Session | None:
    """The live session of ``token`` if it is one of ``kinds``; refreshes its idle clock.

    ``lookup`` may fetch more with the session in the same query (the customer's user)."""
    if not token or len(token) > 200:
        return None
    row = lookup.first(token_hash(token))
    if row is None or row.kind not in kinds:
        return None
    now = utcnow()
    if not alive(row, now):
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        Session.update(last_seen_at=now).where(Session.id == row.id).execute()
        row.last_seen_at = now
    return row


def revoke(session_id) -> None:
    Session.update(revoked_at=utcnow()).where(
        (Session.id == session_id) & Session.revoked_at.is_null()
    ).execute()


def revoke_user_sessions(user_id: int, keep=None) -> int:
    """End every session of a customer login (password reset or change), except ``keep``."""
    query = Session.update(revoked_at=utcnow()).where(
        (Session.user == user_id) & Session.revoked_at.is_null()
    )
    if keep is not None:
        query = query.where(Session.id != keep)
    return query.execute()


def sign_out_everywhere(app, ctx, user, reason: str, keep=None) -> int:
    """SEC-4: end every session of a customer login but ``keep`` (every device, and staff's
    impersonation sessions of it), and have plugins drop what reaches it outside a session
    (``signed_out_everywhere``: web push subscriptions). Call inside the change's transaction;
    returns how many sessions ended."""
    count = revoke_user_sessions(user.id, keep=keep)
    app.plugins.hook.signed_out_everywhere(app=app, ctx=ctx, user=user, reason=reason)
    return count


def live_sessions(user_id: int) -> list[Session]:
    now = utcnow()
    rows = (
        Session.select()
        .where(
            (Session.user == user_id)
            & Session.revoked_at.is_null()
            & (Session.kind == "customer")
            & (Session.expires_at > now)
        )
        .order_by(Session.last_seen_at.desc())
    )
    return [r for r in rows if alive(r, now)]


def set_cookie(app, resp: falcon.Response, name: str, token: str, row: Session) -> None:
    """HttpOnly, SameSite=Lax, Secure on https; it lives no longer than the session may."""
    max_age = int((row.expires_at - utcnow()).total_seconds())
    resp.set_cookie(
        name,
        token,
        max_age=max_age,
        path="/",
        http_only=True,
        same_site="Lax",
        secure=app.settings.security.cookie_secure,
    )


def clear_cookie(app, resp: falcon.Response, name: str) -> None:
    resp.unset_cookie(name, path="/", same_site="Lax")
