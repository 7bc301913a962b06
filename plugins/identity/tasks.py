"""Housekeeping: drop dead sessions, spent reset links, old lockout rows and rate counters."""

from __future__ import annotations

from datetime import timedelta

from engine.db import utcnow
from engine.tasks import task
from plugins.identity import lockout, ratelimit, reset
from plugins.identity.models import PasswordReset, Session


@task(periodic="23 * * * *")
def purge_expired(app) -> dict:
    now = utcnow()
    week_ago = now - timedelta(days=7)
    return {
        "sessions": Session.delete()
        .where(
            (Session.expires_at < week_ago)
            | (Session.revoked_at.is_null(False) & (Session.revoked_at < week_ago))
        )
        .execute(),
        "resets": PasswordReset.delete().where(PasswordReset.created_at < week_ago).execute(),
        "guards": lockout.purge_stale(),
        "rate_counters": ratelimit.purge_expired(),
    }


@task
def send_reset_link(app, email: str) -> bool:
    """Email a reset link if ``email`` is a user's (see ``reset.request_reset``)."""
    return reset.send_reset_link(app, email)
