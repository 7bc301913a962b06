"""What add-ons add to the dashboard (DASH-1), the alerts (NOT-2) and the service cards (SVC-3)."""

from __future__ import annotations

from engine.i18n import N_
from engine.models import Service
from engine.registry import Action, Alert, Card
from plugins.addons import service as rules
from plugins.addons.models import ServiceAddon


def addons_action(app, ctx, service: Service) -> list[Action]:
    """ "Add-ons" where the service's type has a catalogue (one query per request)."""
    if service.status not in rules.LIVE:
        return []
    types = ctx.once("addons.types", rules.types_with_addons)
    if service.service_type not in types:
        return []
    return [Action("addons", N_("Add-ons"), f"/services/{service.id}/addons", order=30)]


def _shown(customer_id: int):
    return (
        ServiceAddon.select(ServiceAddon, Service)
        .join(Service)
        .where(
            (ServiceAddon.customer == customer_id)
            & ServiceAddon.status.in_(
                ("awaiting_payment", "pending", "active", "removing", "failed")
            )
        )
        .order_by(ServiceAddon.id.desc())
    )


def addons_card(app, ctx) -> Card | None:
    """The customer's add-ons and what they cost each month (no card without any)."""
    rows = [
        a
        for a in _shown(ctx.customer_id).limit(20)
        if a.status != "failed" and a.service.status in rules.LIVE
    ]
    if not rows:
        return None
    monthly: dict[str, int] = {}
    for a in rows:
        if a.status == "active" and a.recurring_price:
            share = round(a.recurring_price * 30 / a.period_days)
            monthly[a.currency] = monthly.get(a.currency, 0) + share
    return Card(
        "addons",
        N_("Add-ons"),
        "addons/card.html",
        order=45,
        data={
            "items": [
                {
                    "id": a.id,
                    "name": a.name,
                    "service": a.service.name,
                    "status": a.status,
                    "detail": a.detail,
                    "href": f"/services/{a.service_id}/addons/{a.id}",
                }
                for a in rows[:6]
            ],
            "monthly": [{"amount": v, "currency": k} for k, v in sorted(monthly.items())],
        },
    )


def addons_alerts(app, ctx) -> list[Alert]:
    """Add-ons that could not be set up in the last days (with the refund said)."""
    from datetime import timedelta
    from engine.db import utcnow

    _ = app.translator.gettext
    recent = utcnow() - timedelta(days=7)
    return [
        Alert(
            f"addon-failed-{a.id}",
            "warning",
            _("%(name)s could not be added to %(service)s.", name=a.name, service=a.service.name)
            + " "
            + _(a.failure_message),
            link=f"/services/{a.service_id}/addons/{a.id}",
        )
        for a in _shown(ctx.customer_id).where(
            (ServiceAddon.status == "failed") & (ServiceAddon.created_at > recent)
        )
    ]
