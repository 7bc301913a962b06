"""What the services plugin adds to the dashboard (DASH-1) and to the alerts (NOT-2)."""

from __future__ import annotations

import math

from engine.context import owned
from engine.models import Service
from engine.registry import Alert, Card
from plugins.services import service as rules


def services_card(app, ctx) -> Card | None:
    """Counts per status light and the first few live services (no card without services)."""
    counts = rules.summary_counts(ctx.customer_id)
    if not any(counts.values()):
        return None
    live = (
        rules.services_of(ctx.customer_id)
        .where(Service.status.in_(rules.LIVE))
        .order_by(Service.id)
        .limit(5)
    )
    items = [
        {
            "id": s.id,
            "name": s.name,
            "product": s.product.name,
            "status": s.status,
            "indicator": s.indicator(),
            "href": f"/services/{s.id}",
        }
        for s in live
    ]
    return Card(
        "services",
        "Services",
        "services/card.html",
        order=20,
        data={
            "counts": counts,
            "items": items,
            # the count is of the services listed (live ones), ended ones apart,
            # so "4 services" never heads a list of 3
            "total": sum(counts[k] for k in ("active", "expiring", "suspended")),
            "ended": counts["expired"] + counts["cancelled"],
        },
    )


def service_alerts(app, ctx) -> list[Alert]:
    """Suspended services, and services that end within 7 days."""
    _ = app.translator.gettext
    alerts = []
    suspended = owned(Service, ctx.customer_id).where(Service.status == "suspended")
    for s in suspended.order_by(Service.id):
        alerts.append(
            Alert(
                f"service-suspended-{s.id}",
                "danger",
                _("%(name)s is suspended. Contact support to restore it.", name=s.name),
                link=f"/services/{s.id}",
                dismissible=False,
            )
        )
    fmt_days = app.translator.ngettext
    for s in rules.ending_soon(ctx.customer_id):
        ends = min(d for d in (s.expires_at, None if s.auto_renew else s.renews_at) if d)
        days = max(1, math.ceil((ends - rules.utcnow()).total_seconds() / 86400))
        alerts.append(
            Alert(
                f"service-ending-{s.id}",
                "warning",
                fmt_days(
                    "%(name)s ends in %(num)d day.",
                    "%(name)s ends in %(num)d days.",
                    days,
                    name=s.name,
                ),
                link=f"/services/{s.id}",
            )
        )
    return alerts
