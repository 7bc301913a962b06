"""Two-factor authentication with TOTP (ACCT-6, PWD-4).

Set-up shows a QR code (segno) and the manual key; 2FA turns on once a code
from the app checks out. Ten backup codes are shown once and stored as HMACs;
each works once. A code for a time step already used is a replay: refused and
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
from engine.security import UnsealError, is_sealed, same, seal, sign, unseal
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
        TwoFactor.delete().where((TwoFactor.user == user.id)
                                 & TwoFactor.confirmed_at.is_null()).execute()
        return TwoFactor.create(user=user.id, secret=new_seed(app))


def new_seed(app) -> str:
    """A new random authenticator seed, sealed for storing."""
    return seal(app.settings.secret_key, pyotp.random_base32(32))


def seed(app, row) -> str:
    """The authenticator's seed in clear (base32), for the set-up page and for checking codes.

    ``row`` is a customer's ``TwoFactor`` or any table with the same ``secret`` and
    ``last_step`` columns (the staff plugin's), as are ``check_totp`` and ``confirm``.
    """
    return unseal(app.settings.secret_key, row.secret)


def setup_view(app, email: str, row) -> dict:
    """What a set-up page shows: the key in clear and in groups, the otpauth URI, its QR code."""
    issuer = app.settings.get("brand_name") or "Portico"
    secret = seed(app, row)
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)
    return {"secret": secret, "manual_key": manual_key(secret), "otpauth_uri": uri,
            "qr_svg": qr_data_uri(uri)}


def pending(user) -> TwoFactor | None:
    return TwoFactor.get_or_none((TwoFactor.user == user.id) & TwoFactor.confirmed_at.is_null())


def qr_data_uri(uri: str) -> str:
    """The QR code as an SVG data: URI (the CSP allows data: images, nothing external)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2, dark="#000", light="#fff")


def manual_key(secret: str) -> str:
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def _clean(code: str) -> str:
    return re.sub(r"[\s-]", "", str(code or "")).lower()


def check_totp(app, row, code: str) -> str:
    """"ok", "replay" or "wrong". Accepts the previous, current and next 30 s step."""
    code = _clean(code)
    if not re.fullmatch(r"\d{6}", code):
        return "wrong"
    try:
        totp = pyotp.TOTP(seed(app, row))
    except UnsealError:
        log.error("2FA seed of user %s cannot be opened with this secret_key (was it changed?): "
                  "no code can pass until the old key is back", row.user_id)
        return "wrong"
    now_step = int(time.time()) // STEP
    for step in (now_step - 1, now_step, now_step + 1):
        if same(totp.at(step * STEP), code):
            # APPSEC: a step is accepted once; the conditional update wins for one caller only.
            model = type(row)
            claimed = (model.update(last_step=step)
                       .where((model.id == row.id) & (model.last_step < step)).execute())
            if claimed:
                row.last_step = step
                if not is_sealed(row.secret):  # stored before seeds were sealed: seal it now
                    row.secret = seal(app.settings.secret_key, row.secret)
                    model.update(secret=row.secret).where(model.id == row.id).execute()
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


def _code_hash(app, code: str) -> str:
    return sign(app.settings.secret_key, "backup-code:" + _clean(code))


def new_backup_codes(app, user) -> list[str]:
    """Replace the user's backup codes; returns the new ones (shown once, never again)."""
    codes = ["".join(secrets.choice(_BACKUP_ALPHABET) for _ in range(10)) for _ in range(BACKUP_CODES)]
    with database.atomic():
        BackupCode.delete().where(BackupCode.user == user.id).execute()
        BackupCode.insert_many([{"user": user.id, "code_hash": _code_hash(app, c)} for c in codes]
                               ).execute()
    return [f"{c[:5]}-{c[5:]}" for c in codes]


def use_backup_code(app, user, code: str) -> bool:
    """Spend a backup code; True once per code."""
    if len(_clean(code)) != 10:
        return False
    row = BackupCode.get_or_none((BackupCode.user == user.id) & BackupCode.used_at.is_null()
                                 & (BackupCode.code_hash == _code_hash(app, code)))
    if row is None:
        return False
    return bool(BackupCode.update(used_at=utcnow())
                .where((BackupCode.id == row.id) & BackupCode.used_at.is_null()).execute())


def backup_codes_left(user) -> int:
    return BackupCode.select().where((BackupCode.user == user.id)
                                     & BackupCode.used_at.is_null()).count()


def verify_second_factor(app, user, code: str) -> str:
    """Check a TOTP or a backup code for a user with 2FA on: "ok", "backup", "replay", "wrong"."""
    row = status(user)
    if row is None:
        return "wrong"
    if re.fullmatch(r"\d{6}", _clean(code)):
        return check_totp(app, row, code)
    return "backup" if use_backup_code(app, user, code) else "wrong"
