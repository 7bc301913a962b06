"""Turning other plugins' events into notices (NOT-1)."""

from __future__ import annotations

from engine.db import utcnow
from engine.i18n import N_
from engine.notify import notify_customer

#: The statuses a notice names ("Your service is now %(status)s"): the email templates show
#: them translated (``_(data.status)``), so their words are marked here.
STATUS_WORDS = (N_("active"), N_("suspended"), N_("cancelled"), N_("expired"))


def tell_balance_low(app, service, balance, threshold) -> None:
    """Low balance: once per crossing (the usage plugin fires the hook once per crossing).

    Not when an auto top-up already answers this fall of credit (it ran first, on
    ``usage_rated``): its own email (bought, or failed) is the one the customer gets.
    """
    if balance.type == "monetary" and _auto_topup_covers(app, service, balance.remaining):
        return
    percent = round(100 * balance.remaining / balance.initial) if balance.initial else 0
    notify_customer(
        app,
        service.customer_id,
        "balance_low",
        key=f"low:{service.id}:{balance.type}:{utcnow():%Y%m%dT%H%M%S%f}",
        category="usage",
        data={
            "service": service.name,
            "service_id": service.id,
            "type": balance.type,
            "remaining": balance.remaining,
            "unit": balance.unit,
            "percent": percent,
            "threshold": threshold,
        },
    )


def tell_status_changed(app, service, old_status, new_status, reason) -> None:
    """Activation and deactivation (suspended, cancelled, expired)."""
    if old_status == new_status:
        return
    kind = "service_activated" if new_status == "active" else "service_deactivated"
    notify_customer(
        app,
        service.customer_id,
        kind,
        key=f"status:{service.id}:{new_status}:{utcnow():%Y%m%dT%H%M%S%f}",
        category="service",
        data={
            "service": service.name,
            "service_id": service.id,
            "status": new_status,
            "previous": old_status,
            "reason": reason or "",
        },
    )


def _auto_topup_covers(app, service, remaining: int) -> bool:
    hook = getattr(app.plugins.hook, "auto_topup_status", None)
    status = hook(app=app, service=service) if hook is not None else None
    return bool(status and status.get("enabled") and remaining < status.get("threshold", 0))
