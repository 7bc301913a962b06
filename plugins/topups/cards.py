"""What top-ups add to the dashboard (DASH-1), the alerts (NOT-2) and the service cards (SVC-3)."""

from __future__ import annotations

from engine.i18n import N_
from engine.models import Service
from engine.registry import Action, Alert, Card
from plugins.topups import service as rules
from plugins.topups.models import AutoTopup, TopupPurchase


def topup_action(app, ctx, service: Service) -> list[Action]:
    """ "Top up" on services whose type has a catalogue (one query per request, not per card)."""
    if service.status not in rules.LIVE:
        return []
    types = ctx.once("topups.types", rules.types_with_topups)
    if service.service_type not in types:
        return []
    return [Action("topup", N_("Top up"), f"/services/{service.id}/topup", order=20)]


def topup_card(app, ctx) -> Card | None:
    """The latest top-up and each auto top-up rule (no card for a customer who has neither)."""
    last = (
        TopupPurchase.select(TopupPurchase, Service)
        .join(Service)
        .where((TopupPurchase.customer == ctx.customer_id) & (TopupPurchase.status == "credited"))
        .order_by(TopupPurchase.id.desc())
        .first()
    )
    autos = list(
        AutoTopup.select(AutoTopup, Service)
        .join(Service)
        .where((AutoTopup.customer == ctx.customer_id) & Service.status.in_(rules.LIVE))
        .order_by(AutoTopup.id)
    )
    if last is None and not autos:
        return None
    return Card(
        "topups",
        N_("Top-ups"),
        "topups/card.html",
        order=35,
        data={
            "last": None
            if last is None
            else {
                "name": last.name,
                "service": last.service.name,
                "price": {"amount": last.price, "currency": last.currency},
                "at": last.credited_at.isoformat(),
                "href": f"/services/{last.service_id}/topup",
            },
            "auto": [
                {
                    "service": a.service.name,
                    "service_id": a.service_id,
                    "enabled": a.enabled,
                    "threshold": {"amount": a.threshold, "currency": a.currency},
                    "amount": {"amount": a.amount, "currency": a.currency},
                    "href": f"/services/{a.service_id}/auto-topup",
                }
                for a in autos
            ],
        },
    )


def topup_alerts(app, ctx) -> list[Alert]:
    """Auto top-ups a failure switched off, and purchases being refunded."""
    _ = app.translator.gettext
    found = rules.alerts_data(ctx.customer_id)
    alerts = [
        Alert(
            f"auto-topup-off-{a.service_id}",
            "danger",
            _(
                "Auto top-up on %(name)s is off: %(reason)s",
                name=a.service.name,
                reason=_(a.disabled_reason),
            ),
            link=f"/services/{a.service_id}/auto-topup",
            dismissible=False,
        )
        for a in found["off"]
    ]
    alerts += [
        Alert(
            f"topup-refunding-{p.id}",
            "info",
            _(
                "Your %(name)s top-up on %(service)s could not be added; the payment is "
                "being refunded.",
                name=p.name,
                service=p.service.name,
            ),
            link=f"/services/{p.service_id}/topup/purchases/{p.id}",
        )
        for p in found["refunding"]
    ]
    return alerts
