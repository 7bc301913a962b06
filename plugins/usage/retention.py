"""Usage events under ``[retention] usage_events_days`` (OPS-7): what is archived, what stays.

Balances never depend on events: a bucket's ``remaining`` is its ``initial`` plus its
ledger rows, and the ledger is kept whole (a ledger row names its event by
``event_id``, not by a key). Events are what the usage page adds up for the current
period and charts for up to 90 days, so a renewing service's events since its
period started stay however old they are, and the setting is at least 93 days.

An event's id is how a repeat is told apart (USE-7); once an event may have been
archived its id is gone, so intake refuses events older than the retention.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from peewee import fn

from engine.db import utcnow
from engine.models import Service
from engine.retention import Archive
from plugins.usage.models import UsageEvent


def days(app) -> int:
    return app.settings.retention.usage_events_days


def current_period():
    """Events of a renewing service's current period: they stay, whatever their age."""
    return fn.EXISTS(
        Service.select(Service.id).where(
            (Service.id == UsageEvent.service)
            & Service.renews_at.is_null(False)
            & (Service.period_start <= UsageEvent.occurred_at)
        )
    )


def archive() -> Archive:
    return Archive("usage_events", UsageEvent, UsageEvent.occurred_at, days, current_period)


def horizon(app, now: datetime | None = None) -> datetime | None:
    """Events that occurred before this may already be archived (None: nothing ever is)."""
    kept = days(app)
    return (now or utcnow()) - timedelta(days=kept) if kept else None


def too_old(app, occurred_at: datetime, now: datetime | None = None) -> str | None:
    """Why intake refuses an event this old, or None."""
    limit = horizon(app, now)
    if limit is None or occurred_at >= limit:
        return None
    return (
        f"Older than the usage retention ({days(app)} days): events this old are "
        "archived, so a repeat could not be recognised."
    )
