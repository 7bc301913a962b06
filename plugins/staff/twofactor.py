"""Two-step sign-in for staff (SEC-5): a TOTP authenticator and one-time backup codes, set up
and checked with the customers' pieces (``plugins.identity.twofactor``), asked for at staff
sign-in once it is on.

``[staff] require_2fa`` makes it compulsory: a staff member without it is signed in only
half way, and reaches nothing but the set-up until it is on (``gate``). A lost phone: sign
in with a backup code, turn it off and set it up again; or an administrator with shell access
resets it (``portico staff reset-2fa EMAIL``).
"""

from __future__ import annotations

import falcon

from engine import audit
from engine.db import database
from engine.errors import Problem, invalid
from engine.i18n import N_
from engine.models import StaffUser
from engine.notify import Notice, notify
from engine.registry import PUBLIC
from plugins.identity.public import limiter, lockout, login, twofactor
from plugins.staff.models import StaffBackupCode, StaffTwoFactor

CODE_NEEDED = N_("Enter the 6-digit code from your authenticator app, or a backup code.")
WRONG_CODE = N_("That code is not right.")
REPLAYED = N_("That code was already used. Wait for the next code.")
SETUP_NEEDED = N_("Set up two-step sign-in first")
# What a staff member who must set up two-step sign-in may reach meanwhile.
SETUP_ROUTES = frozenset(
    {
        "/staff/2fa",
        "/staff/logout",
        "/api/v1/staff/2fa",
        "/api/v1/staff/2fa/setup",
        "/api/v1/staff/2fa/enable",
        "/api/v1/staff/auth/logout",
    }
)


def required(app) -> bool:
    return bool(app.settings.plugin("staff").get("require_2fa"))


def factor(staff_id: int) -> StaffTwoFactor | None:
    """The staff member's confirmed authenticator, or None when two-step sign-in is off."""
    return StaffTwoFactor.get_or_none(
        (StaffTwoFactor.staff == staff_id) & StaffTwoFactor.confirmed_at.is_null(False)
    )


def setup_needed(app, staff_id: int) -> bool:
    """Whether the operator requires two-step sign-in and this staff member has none yet."""
    return required(app) and factor(staff_id) is None


def gate(app, req, principal) -> None:
    """Hold a staff member who must set up two-step sign-in to the set-up: pages go to
    ``/staff/2fa``, everything else is a 403 ``2fa-setup-required``."""
    if (
        principal is None
        or not principal.is_staff
        or req.uri_template in SETUP_ROUTES
        or app.permission_for(req.uri_template, req.method) == PUBLIC
        or not setup_needed(app, principal.staff_id)
    ):
        return
    if not req.context.kind.api and req.method == "GET":
        raise falcon.HTTPSeeOther("/staff/2fa")
    raise Problem(
        403,
        SETUP_NEEDED,
        N_(
            "Staff accounts must use two-step sign-in here. Set it up with POST "
            "/api/v1/staff/2fa/setup and POST /api/v1/staff/2fa/enable (or at /staff/2fa)."
        ),
        type="2fa-setup-required",
    )


def status(app, staff_id: int) -> dict:
    staff = StaffUser.get_by_id(staff_id)
    return {
        "enabled": factor(staff_id) is not None,
        "required": required(app),
        "backup_codes_left": twofactor.backup_codes_left(staff, StaffBackupCode),
    }


def start_setup(app, staff: StaffUser) -> dict:
    """A new authenticator awaiting its first code (replacing an unfinished one); 409 if on."""
    if factor(staff.id) is not None:
        raise Problem(
            409,
            N_("Two-step sign-in is already on"),
            N_("Turn it off first to move it to a new phone."),
            type="2fa-enabled",
        )
    with database.atomic():
        row = StaffTwoFactor.get_or_none(StaffTwoFactor.staff == staff.id)
        if row is None:
            row = StaffTwoFactor.create(staff=staff.id, secret=twofactor.new_seed(app))
    return twofactor.setup_view(app, staff.email, row)


def enable(app, ctx, staff: StaffUser, code: str) -> list[str]:
    """Turn two-step sign-in on with the first code from the app; returns the backup codes
    (shown once). 422 for a wrong code."""
    limiter(app).hit("otp", f"staff:{staff.id}")
    if factor(staff.id) is not None:
        raise Problem(409, N_("Two-step sign-in is already on"), type="2fa-enabled")
    row = StaffTwoFactor.get_or_none(StaffTwoFactor.staff == staff.id)
    if row is None:
        raise Problem(409, N_("Start the set-up first"), type="2fa-no-setup")
    result = twofactor.confirm(app, row, code)
    if result != "ok":
        raise invalid({"code": [REPLAYED if result == "replay" else WRONG_CODE]})
    with database.atomic():
        codes = twofactor.new_backup_codes(app, staff, StaffBackupCode)
        audit.record(ctx, "staff.2fa_enabled", f"staff:{staff.id}")
    return codes


def disable(app, ctx, staff: StaffUser, password: str, code: str) -> None:
    """Turn it off: the password and a current code or a backup code, checked as at sign-in.
    Where it is required, the next request leads back to the set-up."""
    login.check_password(app, ctx, "staff", staff.email, password)
    check(app, ctx, staff, code, field="code")
    with database.atomic():
        forget(staff)
        audit.record(ctx, "staff.2fa_disabled", f"staff:{staff.id}")


def renew_backup_codes(app, ctx, staff: StaffUser, password: str, code: str) -> list[str]:
    """A new set of backup codes (the old ones stop working): the password and a code."""
    if factor(staff.id) is None:
        raise Problem(409, N_("Two-step sign-in is off"), type="2fa-disabled")
    login.check_password(app, ctx, "staff", staff.email, password)
    check(app, ctx, staff, code, field="code")
    with database.atomic():
        codes = twofactor.new_backup_codes(app, staff, StaffBackupCode)
        audit.record(ctx, "staff.2fa_backup_codes_renewed", f"staff:{staff.id}")
    return codes


def check(app, ctx, staff: StaffUser, code: str | None, field: str = "otp") -> None:
    """At sign-in, after the password: a staff member with 2FA on needs a current code or an
    unused backup code.

    A wrong or replayed code counts toward the sign-in lock like a wrong password.
    Raises ``LoginRefused`` naming ``field`` (``otp``, as the customers' sign-in).
    """
    row = factor(staff.id)
    if row is None:
        return
    if not code:
        raise login.LoginRefused(CODE_NEEDED, 401, "otp-required", field=field)
    limiter(app).hit("otp", f"staff:{staff.id}")
    result = twofactor.verify_second_factor(app, staff, code, row, StaffBackupCode)
    if result == "backup":
        _backup_code_used(app, ctx, staff)
    if result in ("ok", "backup"):
        return
    if result == "replay":
        audit.record(ctx, "staff.2fa_replay_refused", f"staff:{staff.id}")
    login.failed(
        app,
        ctx,
        "staff",
        lockout.guard_key("staff", staff.email),
        staff,
        "replayed code" if result == "replay" else "code",
    )
    raise login.LoginRefused(
        REPLAYED if result == "replay" else WRONG_CODE, 401, "otp-invalid", field=field
    )


def _backup_code_used(app, ctx, staff: StaffUser) -> None:
    left = twofactor.backup_codes_left(staff, StaffBackupCode)
    with database.atomic():
        audit.record(ctx, "staff.2fa_backup_code_used", f"staff:{staff.id}", {"left": left})
        notify(
            app,
            Notice(
                kind="backup_code_used",
                key=f"staff-backup-code:{staff.id}:{left}",
                email=staff.email,
                category="security",
                mandatory=True,
                data={"left": left, "staff": True},
            ),
        )


def forget(staff: StaffUser) -> None:
    """Delete the staff member's authenticator and backup codes."""
    StaffTwoFactor.delete().where(StaffTwoFactor.staff == staff.id).execute()
    StaffBackupCode.delete().where(StaffBackupCode.staff == staff.id).execute()


def reset(email: str) -> StaffUser | None:
    """Forget a staff member's authenticator (``portico staff reset-2fa``); None: no such staff."""
    staff = StaffUser.get_or_none(StaffUser.email == email.strip().lower())
    if staff is not None:
        forget(staff)
    return staff
