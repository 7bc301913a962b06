"""What the console's customer page shows beyond the customer's own rows: services with their
plan, status and balances, the newest invoices and payments, and the activity log.

Each part comes from the plugin that holds it, and is None when that plugin is off (the page
then leaves its section out): balances through the ``service_balances`` hook (the usage
plugin, or a partner's charging system), invoices and payments through billing's public
facade, the activity log's sentences through account's (the raw action without it).
"""

from __future__ import annotations

import peewee

from engine.api import paginate
from engine.db import utcnow
from engine.models import AuditEvent, Product, Service

#: Services on the page (a business may have hundreds: the API pages through the rest).
SERVICES_SHOWN = 50
#: The newest invoices and payments on the page.
BILLING_SHOWN = 10
#: Activity events a page.
ACTIVITY_PAGE = 20
#: Statuses (``Service.indicator``) whose balances are live (SVC-1 refinement: an expired or
#: cancelled service shows none).
LIVE = ("active", "expiring", "suspended")


def services(app, customer_id: int) -> dict:
    """``{"rows": [{"service", "indicator", "balances"}], "more": bool, "balances": bool}``;
    a row's ``balances`` is the hook's list (None for a service that is over), and
    ``balances`` says whether any plugin keeps them."""
    rows = list(
        Service.select(Service, Product)
        .join(Product)
        .where(Service.customer == customer_id)
        .order_by(Service.id)
        .limit(SERVICES_SHOWN + 1)
    )
    hook = getattr(app.plugins.hook, "service_balances", None)
    now, out = utcnow(), []
    for s in rows[:SERVICES_SHOWN]:
        indicator = s.indicator(now)
        balances = None
        if hook is not None and indicator in LIVE:
            balances = hook(app=app, service=s) or []
        out.append({"service": s, "indicator": indicator, "balances": balances})
    return {"rows": out, "more": len(rows) > SERVICES_SHOWN, "balances": hook is not None}


def billing(app, customer_id: int) -> dict | None:
    """The newest invoices and payments (``{"invoices", "payments", "more_invoices",
    "more_payments"}``), or None when billing is off."""
    if "billing" not in app.plugins.enabled:
        return None
    from plugins.billing.public import Invoice, Payment

    invoices = list(
        Invoice.select()
        .where(Invoice.customer == customer_id)
        .order_by(Invoice.issued_at.desc(), Invoice.id.desc())
        .limit(BILLING_SHOWN + 1)
    )
    payments = list(
        Payment.select(Payment, Invoice)
        .join(Invoice, peewee.JOIN.LEFT_OUTER)
        .where(Payment.customer == customer_id)
        .order_by(Payment.id.desc())
        .limit(BILLING_SHOWN + 1)
    )
    return {
        "invoices": invoices[:BILLING_SHOWN],
        "more_invoices": len(invoices) > BILLING_SHOWN,
        "payments": payments[:BILLING_SHOWN],
        "more_payments": len(payments) > BILLING_SHOWN,
    }


def activity(app, ctx, customer_id: int, cursor: str | None) -> dict:
    """One page of the customer's activity log, newest first: ``{"items", "next"}``, each
    item as the customer's own log describes it (``describe_events``)."""
    query = AuditEvent.select().where(AuditEvent.customer == customer_id)
    page = paginate(query, AuditEvent.id, {"limit": ACTIVITY_PAGE, "cursor": cursor})
    if "account" in app.plugins.enabled:
        from plugins.account.public import describe_events

        items = describe_events(app, ctx, page["items"])
    else:
        items = [_plain(e) for e in page["items"]]
    return {"items": items, "next": page["next"]}


def _plain(event: AuditEvent) -> dict:
    return {
        "id": event.id,
        "action": event.action,
        "description": event.action,
        "data": event.data,
        "at": event.created_at,
        "actor": "",
        "impersonated": event.impersonated,
        "staff": None,
        "ip": event.ip,
    }
