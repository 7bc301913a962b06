"""What the account plugin adds to the dashboard (DASH-1): the newest lines of the activity log."""

from __future__ import annotations

from engine.i18n import N_
from engine.models import AuditEvent
from engine.registry import Card
from plugins.account import activity

RECENT = 3


def activity_card(app, ctx) -> Card:
    """The last few account events, newest first, with who did them (ACCT-5)."""
    rows = activity.activity_query(ctx).order_by(AuditEvent.id.desc()).limit(RECENT)
    events = activity.describe_events(app, ctx, rows)
    return Card(
        "activity",
        N_("Recent activity"),
        "account/card_activity.html",
        order=90,
        data={
            "events": [
                {
                    "action": e["action"],
                    "description": e["description"],
                    "at": e["at"].isoformat(),
                    "by_staff": bool(e["staff"]),
                }
                for e in events
            ]
        },
    )
