"""Signing in (ACC-1): password, lockout, second factor, new session, new-device email.

Both faces (the ``/login`` page and ``POST /api/v1/auth/login``) and the staff
login call these functions; they differ only in how they answer.
"""

from __future__ import annotations

import hashlib

from engine import audit
from engine.db import database, utcnow
from engine.events import emit
from engine.i18n import N_
from engine.models import StaffUser, User
from engine.notify import Notice, notify
from engine.observe.metrics import LOGIN_FAILURES, LOGIN_LOCKOUTS
from engine.redirects import local_path
from engine.security import hash_password, needs_rehash, new_token, verify_password
from plugins.identity import lockout, reset, sessions, twofactor
from plugins.identity.models import KnownDevice
from plugins.identity.ratelimit import limiter

WRONG = N_("The email or password is not right.")
DEVICE_MAX_AGE = 60 * 60 * 24 * 400


class LoginRefused(Exception):
    """Sign-in refused; ``message`` is safe to show (it never says whether the email exists)."""

    def __init__(
        self, message: str, status: int = 401, slug: str = "login-failed", field: str | None = None
    ):
        super().__init__(message)
        self.message, self.status, self.slug, self.field = message, status, slug, field


def check_password(app, ctx, realm: str, email: str, password: str):
    """The active ``User`` (realm "customer") or ``StaffUser`` ("staff") behind a correct password.

    Raises ``LoginRefused`` for a wrong password, a locked email or too many
    attempts; counts failures toward the lock (PWD-3).
    """
    email = (email or "").strip().lower()
    rates = limiter(app)
    rates.hit("login", ctx.ip or "-")
    rates.hit("login_account", realm, email)
    key = lockout.guard_key(realm, email)
    model = User if realm == "customer" else StaffUser
    account = model.get_or_none((model.email == email) & (model.is_active == True))  # noqa: E712
    if lockout.locked_until(key):
        verify_password(None, password)  # same work as any other answer
        LOGIN_FAILURES.labels(realm, "locked").inc()
        raise LoginRefused(lockout.LOCKED_MESSAGE, 429, "login-locked")
    if verify_password(account.password_hash if account else None, password):
        if needs_rehash(account.password_hash):
            model.update(password_hash=hash_password(password)).where(
                model.id == account.id
            ).execute()
        return account
    failed(app, ctx, realm, key, account, "password")
    raise LoginRefused(WRONG)


def failed(app, ctx, realm: str, key: str, account, factor: str) -> None:
    """Count a failure; the one that locks the email sends the reset link and the notice."""
    with database.atomic():
        just_locked = lockout.failed(key)
        if isinstance(account, User):
            audit.record(
                ctx,
                "login.failed",
                f"user:{account.id}",
                {"factor": factor},
                customer_id=account.contact.customer_id,
                user_id=account.id,
            )
        elif account is not None:
            audit.record(ctx, "staff.login_failed", f"staff:{account.id}", {"factor": factor})
        if just_locked and account is not None:
            _on_locked(app, ctx, account, lockout.locked_until(key))
    LOGIN_FAILURES.labels(realm, factor.replace(" ", "_")).inc()
    if just_locked:
        LOGIN_LOCKOUTS.labels(realm).inc()
        raise LoginRefused(lockout.LOCKED_MESSAGE, 429, "login-locked")


def _on_locked(app, ctx, account, until) -> None:
    stamp = until.isoformat() if until else utcnow().isoformat()
    data = {
        "minutes": lockout.LOCK_MINUTES,
        "ip": ctx.ip,
        "until": until.strftime("%Y-%m-%d %H:%M UTC") if until else "",
    }
    if isinstance(account, User):
        reset.issue(app, account, reason="lockout")
        audit.record(
            ctx,
            "login.locked",
            f"user:{account.id}",
            customer_id=account.contact.customer_id,
            user_id=account.id,
        )
        notify(
            app,
            Notice(
                kind="account_locked",
                key=f"lockout:{account.id}:{stamp}",
                user_id=account.id,
                customer_id=account.contact.customer_id,
                category="security",
                sensitive=True,
                data=data,
            ),
        )
    else:
        audit.record(ctx, "staff.login_locked", f"staff:{account.id}")
        notify(
            app,
            Notice(
                kind="account_locked",
                key=f"staff-lockout:{account.id}:{stamp}",
                email=account.email,
                category="security",
                sensitive=True,
                data={**data, "staff": True},
            ),
        )


def second_factor(app, ctx, user: User, code: str) -> str:
    """Check a TOTP or backup code at sign-in; a wrong or replayed one counts as a failure."""
    limiter(app).hit("otp", str(user.id))
    key = lockout.guard_key("customer", user.email)
    if lockout.locked_until(key):
        raise LoginRefused(lockout.LOCKED_MESSAGE, 429, "login-locked")
    result = twofactor.verify_second_factor(app, user, code)
    if result in ("ok", "backup"):
        if result == "backup":
            left = twofactor.backup_codes_left(user)
            with database.atomic():
                audit.record(
                    ctx,
                    "2fa.backup_code_used",
                    f"user:{user.id}",
                    {"left": left},
                    customer_id=user.contact.customer_id,
                    user_id=user.id,
                )
                notify(
                    app,
                    Notice(
                        kind="backup_code_used",
                        key=f"backup_code_used:{user.id}:{left}",
                        user_id=user.id,
                        customer_id=user.contact.customer_id,
                        category="security",
                        sensitive=True,
                        data={"left": left},
                    ),
                )
        return result
    if result == "replay":
        audit.record(
            ctx,
            "2fa.replay_refused",
            f"user:{user.id}",
            customer_id=user.contact.customer_id,
            user_id=user.id,
        )
    failed(app, ctx, "customer", key, user, "replayed code" if result == "replay" else "code")
    raise LoginRefused(
        "That code was already used. Wait for the next code."
        if result == "replay"
        else "That code is not right.",
        401,
        "otp-invalid",
        field="otp",
    )


def complete(
    app, ctx, req, resp, user: User, method: str, via: str = "portal"
) -> tuple[str, object]:
    """Start the customer session (a fresh token), note the device, record the sign-in."""
    with database.atomic():
        lockout.succeeded(lockout.guard_key("customer", user.email))
        token, row = sessions.create(app, ctx, "customer", user_id=user.id)
        _remember_device(app, ctx, req, resp, user, row)
        audit.record(
            ctx,
            "login",
            f"user:{user.id}",
            {"method": method, "via": via},
            customer_id=user.contact.customer_id,
            user_id=user.id,
        )
    sessions.set_cookie(app, resp, sessions.SESSION_COOKIE, token, row)
    return token, row


def _remember_device(app, ctx, req, resp, user: User, session) -> None:
    """A sign-in from a browser (or client) this user never used sends a security email (NOT-1)."""
    device = req.cookies.get(sessions.DEVICE_COOKIE)
    if not device or len(device) > 100:
        device = None
    # Clients that keep no cookies (scripts) are told apart by user agent and address.
    seen_as = device or f"ua:{ctx.user_agent}|ip:{ctx.ip}"
    digest = hashlib.sha256(seen_as.encode()).hexdigest()
    now = utcnow()
    known = KnownDevice.get_or_none(
        (KnownDevice.user == user.id) & (KnownDevice.device_hash == digest)
    )
    if known is not None:
        KnownDevice.update(last_seen_at=now).where(KnownDevice.id == known.id).execute()
        return
    first_ever = not KnownDevice.select().where(KnownDevice.user == user.id).exists()
    if device is None:
        device = new_token(24)
        KnownDevice.create(
            user=user.id,
            device_hash=hashlib.sha256(device.encode()).hexdigest(),
            user_agent=ctx.user_agent,
        )
        resp.set_cookie(
            sessions.DEVICE_COOKIE,
            device,
            max_age=DEVICE_MAX_AGE,
            path="/",
            http_only=True,
            same_site="Lax",
            secure=app.settings.security.cookie_secure,
        )
    KnownDevice.insert(
        user=user.id, device_hash=digest, user_agent=ctx.user_agent
    ).on_conflict_ignore().execute()
    if first_ever:
        return  # the very first sign-in is not news
    notify(
        app,
        Notice(
            kind="new_device",
            key=f"new_device:{session.id}",
            user_id=user.id,
            customer_id=user.contact.customer_id,
            category="security",
            sensitive=True,
            data={
                "when_at": now.isoformat(),
                "ip": ctx.ip,
                "user_agent": ctx.user_agent or "unknown",
            },
        ),
    )
    emit(
        app,
        "login.new_device",
        {
            "user_id": user.id,
            "contact_id": user.contact_id,
            "customer_id": user.contact.customer_id,
            "at": now.isoformat(),
            "ip": ctx.ip,
            "user_agent": ctx.user_agent or "",
        },
        customer_id=user.contact.customer_id,
    )


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths (``engine.redirects.local_path``), and never back to signing in."""
    target = local_path(target, default)
    if target.startswith(("/login", "/logout", "/staff/login")):
        return default
    return target
