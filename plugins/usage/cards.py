"""What the usage plugin adds to the dashboard (DASH-1) and to the alerts (NOT-2)."""

from __future__ import annotations

from engine.i18n import N_
from engine.registry import Alert, Card
from engine.theming import Formatter
from plugins.usage.service import customer_totals, low_balances

NAMES = {
    "data": N_("data"),
    "voice": N_("minutes"),
    "sms": N_("texts"),
    "mms": N_("picture messages"),
    "monetary": N_("credit"),
}


def _totals(app, ctx) -> list[dict]:
    """The customer's totals, read once per request for the card and the alerts."""
    return ctx.once("usage.customer_totals", lambda: customer_totals(app, ctx.customer_id))


def balances_card(app, ctx) -> Card | None:
    """Each live service's totals per balance type, with the share left (no card without any)."""
    rows = [
        {
            "service_id": r["service"].id,
            "name": r["service"].name,
            "href": f"/services/{r['service'].id}/usage",
            "balances": r["totals"],
        }
        for r in _totals(app, ctx)
        if r["totals"]
    ]
    if not rows:
        return None
    return Card("balances", "Balances", "usage/card.html", order=30, data={"services": rows})


def low_balance_alerts(app, ctx) -> list[Alert]:
    """One alert per service and balance type below the customer's threshold."""
    _ = app.translator.gettext
    fmt = Formatter(ctx.locale, ctx.timezone)
    alerts = []
    for service, total, _threshold in low_balances(app, ctx.customer_id, rows=_totals(app, ctx)):
        left = fmt.quantity(total["remaining"], total["unit"])
        alerts.append(
            Alert(
                f"low-{total['type']}-{service.id}",
                "warning",
                _(
                    "Low %(what)s on %(name)s: %(left)s left.",
                    what=_(NAMES[total["type"]]),
                    name=service.name,
                    left=left,
                ),
                link=f"/services/{service.id}/usage",
            )
        )
    return alerts
