"""Account lockout (PWD-3): 5 failed sign-ins lock an email for 30 minutes.

Counters are rows in the database, so the lock holds across gunicorn workers
and hosts. Unknown emails are counted and locked exactly like registered
ones: the answers never tell whether an email is registered. The move to
"locked" is a single conditional UPDATE, so however many failures arrive at
once, exactly one caller sees ``just_locked`` and sends the one reset email.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.db import database, utcnow
from plugins.identity.models import LoginGuard

MAX_FAILURES = 5
LOCK_MINUTES = 30
LOCKED_MESSAGE = (
    "Too many failed sign-in attempts: sign-in for this email is paused for "
    f"{LOCK_MINUTES} minutes. If an account uses this email, we have emailed it "
    "a link to reset the password."
)


def guard_key(realm: str, email: str) -> str:
    return f"{realm}:{email.strip().lower()}"[:300]


def locked_until(key: str) -> datetime | None:
    """When the lock on ``key`` lifts, or None when it is not locked."""
    row = LoginGuard.get_or_none(LoginGuard.key == key)
    if row is not None and row.locked_until is not None and row.locked_until > utcnow():
        return row.locked_until
    return None


def failed(key: str) -> bool:
    """Count a failure; True only for the one failure that locks the email."""
    now = utcnow()
    with database.atomic():
        LoginGuard.insert(key=key, failures=0, updated_at=now).on_conflict_ignore().execute()
        # A lock that has run out starts a fresh count.
        (
            LoginGuard.update(failures=0, locked_until=None)
            .where((LoginGuard.key == key) & (LoginGuard.locked_until <= now))
            .execute()
        )
        (
            LoginGuard.update(failures=LoginGuard.failures + 1, updated_at=now)
            .where(LoginGuard.key == key)
            .execute()
        )
        locked = (
            LoginGuard.update(locked_until=now + timedelta(minutes=LOCK_MINUTES))
            .where(
                (LoginGuard.key == key)
                & (LoginGuard.failures >= MAX_FAILURES)
                & LoginGuard.locked_until.is_null()
            )
            .execute()
        )
    return locked == 1


def succeeded(key: str) -> None:
    """A correct sign-in (or a completed reset) clears the count and lifts any lock."""
    LoginGuard.delete().where(LoginGuard.key == key).execute()


lift = succeeded


def purge_stale(days: int = 7) -> int:
    cutoff = utcnow() - timedelta(days=days)
    return (
        LoginGuard.delete()
        .where(
            (LoginGuard.updated_at < cutoff)
            & (LoginGuard.locked_until.is_null() | (LoginGuard.locked_until < utcnow()))
        )
        .execute()
    )
