"""The rules of notification preferences (NOT-3): what goes where, and when."""

from __future__ import annotations

import peewee

from engine import audit
from engine.db import utcnow
from engine.models import Contact, User
from plugins.notifications.models import DigestItem, NotificationPreference

#: Categories a customer controls; security notices always go out by email, at once.
CATEGORIES = ("billing", "usage", "service", "account")
BALANCE_TYPES = ("data", "voice", "sms", "monetary")
DEFAULT_THRESHOLDS = {"data": 10, "voice": 10, "sms": 10, "monetary": 500}
DEFAULT_CHANNELS = ("email",)


def defaults(app) -> dict:
    return {
        "frequency": "immediate",
        "channels": {c: [ch for ch in DEFAULT_CHANNELS if ch in app.channels] for c in CATEGORIES},
        "thresholds": dict(DEFAULT_THRESHOLDS),
    }


def preferences(app, user_id: int) -> dict:
    """The user's preferences with defaults filled in."""
    found = defaults(app)
    row = NotificationPreference.get_or_none(NotificationPreference.user == user_id)
    if row is not None:
        found["frequency"] = row.frequency
        found["channels"].update({k: v for k, v in row.channels.items() if k in CATEGORIES})
        found["thresholds"].update({k: v for k, v in row.thresholds.items() if k in BALANCE_TYPES})
    found["channels"]["security"] = ["email"]
    found["available_channels"] = [
        {"id": c.id, "label": getattr(c, "label", c.id)} for c in app.channels.values()
    ]
    return found


def save(app, ctx, user_id: int, data: dict) -> dict:
    """Store validated preferences and record the change in the activity log."""
    values = {
        "frequency": data["frequency"],
        "channels": {c: sorted(set(data["channels"].get(c, []))) for c in CATEGORIES},
        "thresholds": {k: data["thresholds"][k] for k in BALANCE_TYPES},
        "updated_at": utcnow(),
    }
    with app.database.atomic():
        (
            NotificationPreference.insert(user=user_id, **values)
            .on_conflict(
                conflict_target=[NotificationPreference.user],
                update={getattr(NotificationPreference, k): v for k, v in values.items()},
            )
            .execute()
        )
        audit.record(
            ctx,
            "notifications.preferences_changed",
            f"user:{user_id}",
            {"frequency": values["frequency"], "thresholds": values["thresholds"]},
        )
    return preferences(app, user_id)


def route(app, notice, channel: str) -> str | None:
    """``notification_route``: send, keep for the digest, or skip, per the user's choices."""
    if notice.category == "security" or notice.user_id is None:
        return None  # security notices and bare addresses (e.g. a new email) always go out
    prefs = preferences(app, notice.user_id)
    if channel not in prefs["channels"].get(notice.category, []):
        return "skip"
    if prefs["frequency"] == "digest":
        hold_for_digest(notice, channel)
        return "digest"
    return "send"


def hold_for_digest(notice, channel: str) -> None:
    try:
        with DigestItem._meta.database.atomic():
            DigestItem.create(
                user=notice.user_id,
                key=notice.key,
                kind=notice.kind,
                category=notice.category,
                data=notice.data,
                channel=channel,
            )
    except peewee.IntegrityError:
        pass  # the same notice again: keep it once


def threshold_for_customer(customer_id: int, balance_type: str) -> int | None:
    """The primary contact's threshold for a balance type (mms follows sms)."""
    return thresholds_for_customers([customer_id], balance_type).get(customer_id)


def thresholds_for_customers(customer_ids: list[int], balance_type: str) -> dict[int, int]:
    """Each customer's threshold, from their primary contact's preferences (else the first
    contact's, else the default), in one query (rating asks per batch); mms follows sms."""
    kind = "sms" if balance_type == "mms" else balance_type
    rows = (
        NotificationPreference.select(Contact.customer, NotificationPreference.thresholds)
        .join(User)
        .join(Contact)
        .where(Contact.customer.in_(list(customer_ids)))
        .order_by(Contact.customer, Contact.is_primary.desc(), Contact.id)
        .tuples()
    )
    first: dict[int, dict] = {}
    for customer_id, thresholds in rows:
        first.setdefault(customer_id, thresholds)
    found = {
        cid: first.get(cid, {}).get(kind, DEFAULT_THRESHOLDS.get(kind)) for cid in customer_ids
    }
    return {cid: value for cid, value in found.items() if value is not None}
