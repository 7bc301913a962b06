"""Changing a service's plan (SVC-3) among the plans the operator marks compatible.

An upgrade (a higher monthly fee) applies at once, with a prorated charge for the rest of
the current period; a downgrade (a lower or equal fee) waits for the next renewal, stored
on the service (``pending_plan``) until ``apply_pending`` runs there, and the customer may
cancel it before then. Both faces (API and portal) quote first and confirm second.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from engine import audit, roles
from engine.api import money
from engine.db import locked_transaction, utcnow
from engine.errors import Problem, invalid
from engine.events import emit
from engine.i18n import N_
from engine.models import Product, Service
from plugins.services.service import LIVE, _locked, modify_allowed, refuse_modify

DAY = timedelta(days=1)


def compatible(service: Service) -> list[Product]:
    """The products the service's plan may switch to, in the operator's order."""
    wanted = [p for p in service.product.compatible_plans if p != service.product.external_id]
    found = {p.external_id: p for p in Product.select().where(Product.external_id.in_(wanted))}
    return [found[p] for p in wanted if p in found]


def period_end(service: Service) -> datetime:
    """When the current period ends: the renewal date, else one period after its start."""
    return service.renews_at or service.period_start + max(1, service.product.period_days) * DAY


def quote(service: Service, target: Product, now: datetime | None = None) -> dict:
    """What switching to ``target`` costs and when it applies.

    An upgrade charges (whole days left / period days) × the fee difference now, both
    rounded down (in the customer's favour); a downgrade charges nothing and applies at
    the next renewal."""
    now = now or utcnow()
    difference = target.monthly_fee - service.monthly_fee
    upgrade = difference > 0
    period = max(1, service.product.period_days)
    days_left = min(period, max(0, (period_end(service) - now) // DAY))
    charge = difference * days_left // period if upgrade else 0
    return {
        "plan": target.external_id,
        "product": target,
        "kind": "upgrade" if upgrade else "downgrade",
        "monthly_fee": money(target.monthly_fee, target.currency),
        "current_fee": money(service.monthly_fee, service.currency),
        "days_left": days_left,
        "period_days": period,
        "charge_now": money(charge, service.currency),
        "applies_at": now if upgrade else period_end(service),
    }


def options(service: Service, now: datetime | None = None) -> list[dict]:
    """Every compatible plan with its quote (the Modify page and ``plan-options``)."""
    return [quote(service, p, now) for p in compatible(service)]


def pending(service: Service) -> Product | None:
    """The plan a scheduled downgrade switches to, if any."""
    if not service.pending_plan:
        return None
    return Product.get_or_none(Product.external_id == service.pending_plan)


def _checked(app, ctx, service: Service, plan: str) -> tuple[Service, Product]:
    """The locked service and the target plan, or the refusal (403, 409, 422)."""
    roles.require(ctx.principal, "change_plan")
    service = _locked(service.id)
    if service.status not in LIVE:
        raise Problem(
            409, N_("This service has ended and cannot change plan"), type="service-ended"
        )
    if not modify_allowed(service):
        raise refuse_modify(app)
    target = next((p for p in compatible(service) if p.external_id == plan), None)
    if target is None:
        raise invalid({"plan": [N_("This service cannot switch to that plan.")]})
    return service, target


def change(app, ctx, service: Service, plan: str, confirm: bool, now=None) -> dict:
    """Quote switching ``service`` to ``plan`` and, with ``confirm``, do it (one transaction).

    Returns the quote with ``done`` (``applied``, ``scheduled``) or None for a quote only."""
    now = now or utcnow()
    with locked_transaction():
        service, target = _checked(app, ctx, service, plan)
        q = quote(service, target, now)
        if not confirm:
            return {**q, "done": None}
        data = {
            "service_id": service.id,
            "service_external_id": service.external_id,
            "customer_id": service.customer_id,
            "from_plan": service.product.external_id,
            "to_plan": target.external_id,
            "kind": q["kind"],
            "charge_now": q["charge_now"]["amount"],
            "currency": service.currency,
            "applies_at": q["applies_at"].isoformat(),
        }
        target_ref = f"service:{service.id}"
        audit.record(ctx, "service.plan_change_requested", target_ref, data)
        if q["kind"] == "upgrade":
            _switch(service, target)
            _charge(app, service, target, q, now)
            audit.record(ctx, "service.plan_change_applied", target_ref, data)
            done = "applied"
        else:
            service.pending_plan = target.external_id
            service.save(only=[Service.pending_plan])
            audit.record(ctx, "service.plan_change_scheduled", target_ref, data)
            done = "scheduled"
        emit(app, "plan_change.requested", data, customer_id=service.customer_id)
    return {**q, "done": done}


def cancel_pending(app, ctx, service: Service) -> Service:
    """Take back a scheduled downgrade before the renewal applies it."""
    roles.require(ctx.principal, "change_plan")
    with locked_transaction():
        service = _locked(service.id)
        if not service.pending_plan:
            raise Problem(409, N_("No plan change is scheduled"), type="no-plan-change")
        plan, service.pending_plan = service.pending_plan, None
        service.save(only=[Service.pending_plan])
        audit.record(
            ctx, "service.plan_change_cancelled", f"service:{service.id}", {"to_plan": plan}
        )
    return service


def apply_pending(app, service: Service) -> None:
    """At renewal (inside its transaction): switch to the scheduled plan, if any."""
    target = pending(service)
    plan, service.pending_plan = service.pending_plan, None
    if plan is None:
        return
    if target is not None:
        _switch(service, target)
    service.save(only=[Service.pending_plan])
    audit.record_system(
        app,
        "service.plan_change_applied" if target else "service.plan_change_dropped",
        f"service:{service.id}",
        {"to_plan": plan, "at_renewal": True},
        customer_id=service.customer_id,
    )


def _switch(service: Service, target: Product) -> None:
    service.product, service.monthly_fee, service.currency = (
        target,
        target.monthly_fee,
        target.currency,
    )
    service.pending_plan = None
    service.save(
        only=[Service.product, Service.monthly_fee, Service.currency, Service.pending_plan]
    )


def _charge(app, service: Service, target: Product, q: dict, now: datetime) -> None:
    """The prorated charge goes on the account, to be invoiced with the next bill (when
    billing is off, the operator hears the amount through ``plan_change.requested``)."""
    amount = q["charge_now"]["amount"]
    if amount <= 0 or "billing" not in app.plugins.enabled:
        return
    from plugins.billing.public import payments

    payments.record_inclusive_charge(
        app,
        service.customer_id,
        description=f"Plan change to {target.name} — {service.name} — "
        f"{q['days_left']} of {q['period_days']} days",
        price=amount,
        currency=service.currency,
        service_id=service.id,
        reference=f"plan-change:{service.id}:{now.isoformat()}",
        occurred_at=now,
    )
