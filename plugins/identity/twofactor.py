"""Two-factor authentication with TOTP (ACCT-6, PWD-4).

Set-up shows a QR code (segno) and the manual key; 2FA turns on once a code
from the app checks out. Ten backup codes are shown once and stored as HMACs;
each works once (the staff plugin keeps its members' codes the same way). A code for a time step already used is a replay: refused and
logged. Turning 2FA off needs the password and a code. The seed is stored
sealed under the secret key (``engine.security.seal``), so a copy of the
database alone cannot mint codes.
"""

from __future__ import annotations

import logging
import re
import secrets
import time

import pyotp
import segno

from engine.db import database, utcnow
from engine.security import UnsealError, reseal, same, seal, sign, unseal
from plugins.identity.models import BackupCode, TwoFactor

STEP = 30
BACKUP_CODES = 10
_BACKUP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i look-alikes
log = logging.getLogger("portico.identity")


def status(user) -> TwoFactor | None:
    """The user's confirmed authenticator, or None when 2FA is off."""
    row = TwoFactor.get_or_none(TwoFactor.user == user.id)
    return row if row is not None and row.confirmed_at is not None else None


def enabled(user) -> bool:
    return status(user) is not None


def begin_setup(app, user) -> TwoFactor:
    """A new secret awaiting its first code (replaces an unfinished set-up)."""
    with database.atomic():
        TwoFactor.delete().where(
            (TwoFactor.user == user.id) & TwoFactor.confirmed_at.is_null()
        ).execute()
        return TwoFactor.create(user=user.id, secret=new_seed(app))


def new_seed(app) -> str:
    """A new random authenticator seed, sealed for storing."""
    return seal(app.settings.secret_keys, pyotp.random_base32(32))


def seed(app, row) -> str:
    """The authenticator's seed in clear (base32), for the set-up page and for checking codes.

    ``row`` is a customer's ``TwoFactor`` or any table with the same ``secret`` and
    ``last_step`` columns (the staff plugin's), as are ``check_totp`` and ``confirm``.
    """
    return unseal(app.settings.secret_keys, row.secret)


def setup_view(app, email: str, row) -> dict:
    """What a set-up page shows: the key in clear and in groups, the otpauth URI, its QR code."""
    issuer = app.settings.get("brand_name") or "Portico"
    secret = seed(app, row)
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)
    return {
        "secret": secret,
        "manual_key": manual_key(secret),
        "otpauth_uri": uri,
        "qr_svg": qr_data_uri(uri),
    }


def pending(user) -> TwoFactor | None:
    return TwoFactor.get_or_none((TwoFactor.user == user.id) & TwoFactor.confirmed_at.is_null())


def qr_data_uri(uri: str) -> str:
    """The QR code as an SVG data: URI (the CSP allows data: images, nothing external)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2, dark="#000", light="#fff")


def manual_key(secret: str) -> str:
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _clean(code: str) -> str:
    return re.sub(r"[\s-]", "", str(code or "")).lower()


def check_totp(app, row, code: str) -> str:
    """ "ok", "replay" or "wrong". Accepts the previous, current and next 30 s step."""
    code = _clean(code)
    if not re.fullmatch(r"\d{6}", code):
        return "wrong"
    try:
        totp = pyotp.TOTP(seed(app, row))
    except UnsealError:
        log.error(
            "2FA seed %s:%s cannot be opened with any of the secret keys (was its key "
            "removed?): no code can pass until that key is back in secret_keys",
            type(row).__name__,
            row.id,
        )
        return "wrong"
    now_step = int(time.time()) // STEP
    for step in (now_step - 1, now_step, now_step + 1):
        if same(totp.at(step * STEP), code):
            # APPSEC: a step is accepted once; the conditional update wins for one caller only.
            model = type(row)
            claimed = (
                model.update(last_step=step)
                .where((model.id == row.id) & (model.last_step < step))
                .execute()
            )
            if claimed:
                row.last_step = step
                # Stored before seeds were sealed, or under a key since rotated out of first
                # place: seal it under the first key now (SEC-6).
                fresh = reseal(app.settings.secret_keys, row.secret)
                if fresh is not None:
                    row.secret = fresh
                    model.update(secret=fresh).where(model.id == row.id).execute()
                return "ok"
            return "replay"
    return "wrong"


def confirm(app, row, code: str) -> str:
    """Turn 2FA on with the first code; returns the check result."""
    result = check_totp(app, row, code)
    if result == "ok":
        model = type(row)
        model.update(confirmed_at=utcnow()).where(model.id == row.id).execute()
    return result


def disable(user) -> None:
    with database.atomic():
        TwoFactor.delete().where(TwoFactor.user == user.id).execute()
        BackupCode.delete().where(BackupCode.user == user.id).execute()


def _code_hash(key: str, code: str) -> str:
    return sign(key, "backup-code:" + _clean(code))


def _owner(table, owner):
    """``table``'s foreign key to ``owner``'s table (``BackupCode.user``, a staff table's
    ``staff``): backup codes work the same for customers and for staff."""
    return next(f for f in table._meta.refs if f.rel_model is type(owner))


def new_backup_codes(app, owner, table=BackupCode) -> list[str]:
    """Replace the owner's backup codes; returns the new ones (shown once, never again).

    ``owner`` is a customer's ``User`` (``table`` ``BackupCode``) or a row of any table
    that a table like ``BackupCode`` (``code_hash``, ``used_at``) points to, such as a
    staff member and the staff plugin's codes."""
    codes = [
        "".join(secrets.choice(_BACKUP_ALPHABET) for _ in range(10)) for _ in range(BACKUP_CODES)
    ]
    owned_by = _owner(table, owner)
    key = app.settings.secret_key  # the first of secret_keys
    with database.atomic():
        table.delete().where(owned_by == owner.id).execute()
        table.insert_many(
            [{owned_by.name: owner.id, "code_hash": _code_hash(key, c)} for c in codes]
        ).execute()
    return [f"{c[:5]}-{c[5:]}" for c in codes]


def use_backup_code(app, owner, code: str, table=BackupCode) -> bool:
    """Spend a backup code; True once per code."""
    if len(_clean(code)) != 10:
        return False
    # Made under any of the secret keys (SEC-6): the first signs, all verify.
    hashes = [_code_hash(key, code) for key in app.settings.secret_keys]
    row = table.get_or_none(
        (_owner(table, owner) == owner.id) & table.used_at.is_null() & table.code_hash.in_(hashes)
    )
    if row is None:
        return False
    return bool(
        table.update(used_at=utcnow())
        .where((table.id == row.id) & table.used_at.is_null())
        .execute()
    )


def backup_codes_left(owner, table=BackupCode) -> int:
    return (
        table.select().where((_owner(table, owner) == owner.id) & table.used_at.is_null()).count()
    )


def is_backup_code(code: str) -> bool:
    """Whether ``code`` has the shape of a backup code (not of a 6-digit TOTP code)."""
    return not re.fullmatch(r"\d{6}", _clean(code))


def verify_second_factor(app, user, code: str, factor=None, table=BackupCode) -> str:
    """Check a TOTP or a backup code for a user with 2FA on: "ok", "backup", "replay", "wrong".

    Staff pass their confirmed authenticator as ``factor`` and their codes' ``table``."""
    row = status(user) if factor is None else factor
    if row is None:
        return "wrong"
    if not is_backup_code(code):
        return check_totp(app, row, code)
    return "backup" if use_backup_code(app, user, code, table) else "wrong"
