"""Two-step sign-in for staff: a TOTP authenticator, set up and checked as customers' are
(``plugins.identity.twofactor``), asked for at staff sign-in once it is on.

Staff have no backup codes: an administrator with shell access resets a lost
authenticator (``portico staff reset-2fa EMAIL``).
"""
from __future__ import annotations

from engine import audit
from engine.db import database
from engine.errors import Problem, invalid
from engine.models import StaffUser
from plugins.identity import lockout, login, twofactor
from plugins.identity.ratelimit import limiter
from plugins.staff.models import StaffTwoFactor

CODE_NEEDED = "Enter the 6-digit code from your authenticator app."
WRONG_CODE = "That code is not right."
REPLAYED = "That code was already used. Wait for the next code."


def factor(staff_id: int) -> StaffTwoFactor | None:
    """The staff member's confirmed authenticator, or None when two-step sign-in is off."""
    return StaffTwoFactor.get_or_none((StaffTwoFactor.staff == staff_id)
                                      & StaffTwoFactor.confirmed_at.is_null(False))


def start_setup(app, staff: StaffUser) -> dict:
    """A new authenticator awaiting its first code (replacing an unfinished one); 409 if on."""
    if factor(staff.id) is not None:
        raise Problem(409, "Two-step sign-in is already on",
                      "Turn it off first to move it to a new phone.", type="2fa-enabled")
    with database.atomic():
        row = StaffTwoFactor.get_or_none(StaffTwoFactor.staff == staff.id)
        if row is None:
            row = StaffTwoFactor.create(staff=staff.id, secret=twofactor.new_seed(app))
    return twofactor.setup_view(app, staff.email, row)


def enable(app, ctx, staff: StaffUser, code: str) -> None:
    """Turn two-step sign-in on with the first code from the app; 422 for a wrong code."""
    limiter(app).hit("otp", f"staff:{staff.id}")
    if factor(staff.id) is not None:
        raise Problem(409, "Two-step sign-in is already on", type="2fa-enabled")
    row = StaffTwoFactor.get_or_none(StaffTwoFactor.staff == staff.id)
    if row is None:
        raise Problem(409, "Start the set-up first", type="2fa-no-setup")
    result = twofactor.confirm(app, row, code)
    if result != "ok":
        raise invalid({"code": [REPLAYED if result == "replay" else WRONG_CODE]})
    audit.record(ctx, "staff.2fa_enabled", f"staff:{staff.id}")


def disable(app, ctx, staff: StaffUser, password: str, code: str) -> None:
    """Turn it off: the password and a current code, both checked as at sign-in."""
    login.check_password(app, ctx, "staff", staff.email, password)
    check(app, ctx, staff, code, field="code")
    with database.atomic():
        StaffTwoFactor.delete().where(StaffTwoFactor.staff == staff.id).execute()
        audit.record(ctx, "staff.2fa_disabled", f"staff:{staff.id}")


def check(app, ctx, staff: StaffUser, code: str | None, field: str = "otp") -> None:
    """At sign-in, after the password: a staff member with 2FA on needs a current code.

    A wrong or replayed code counts toward the sign-in lock like a wrong password.
    Raises ``LoginRefused`` naming ``field`` (``otp``, as the customers' sign-in).
    """
    row = factor(staff.id)
    if row is None:
        return
    if not code:
        raise login.LoginRefused(CODE_NEEDED, 401, "otp-required", field=field)
    limiter(app).hit("otp", f"staff:{staff.id}")
    result = twofactor.check_totp(app, row, code)
    if result == "ok":
        return
    if result == "replay":
        audit.record(ctx, "staff.2fa_replay_refused", f"staff:{staff.id}")
    login.failed(app, ctx, "staff", lockout.guard_key("staff", staff.email), staff,
                 "replayed code" if result == "replay" else "code")
    raise login.LoginRefused(REPLAYED if result == "replay" else WRONG_CODE, 401, "otp-invalid",
                             field=field)


def reset(email: str) -> StaffUser | None:
    """Forget a staff member's authenticator (``portico staff reset-2fa``); None: no such staff."""
    staff = StaffUser.get_or_none(StaffUser.email == email.strip().lower())
    if staff is not None:
        StaffTwoFactor.delete().where(StaffTwoFactor.staff == staff.id).execute()
    return staff
