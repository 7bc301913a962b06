"""The rules of the services section: what a customer sees and may do with a service.

Both faces (the JSON API and the portal pages) call these functions; so does
the periodic renewal job.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import peewee
import segno

from engine import audit
from engine.api import money
from engine.context import owned
from engine.db import connection, lock_rows, locked_transaction, utcnow
from engine.errors import Problem
from engine.events import emit
from engine.i18n import N_
from engine.models import EXPIRING_SOON, Product, Service
from engine.support import reach_text, tel_uri

#: Statuses in which a service still runs (and may be cancelled or renewed).
LIVE = ("active", "suspended")

#: Why a service stopped, as the ``service_status_changed`` hook hands it on; marked for
#: translation, so the notice a customer gets reads in their language ("Reason: ...").
ENDED_REASON = N_("The service reached its end date.")
CANCELLED_REASON = N_("Cancelled by the customer.")


# -- reading -------------------------------------------------------------------


def services_of(customer_id: int, status: str | None = None, kind: str | None = None):
    """The customer's services with their products (one query, no N+1)."""
    query = owned(Service, customer_id).select_extend(Product).join(Product)
    if status:
        query = query.where(Service.status == status)
    if kind:
        query = query.where(Service.service_type == kind)
    return query


def actions_for(app, ctx, service: Service) -> list[dict]:
    """SVC-3: the links every enabled plugin offers on this service, in order."""
    pairs = app.plugins.collect("service_actions", app=app, ctx=ctx, service=service)
    ordered = sorted(pairs, key=lambda p: (p[1].order, p[1].id))
    return [
        {"id": a.id, "label": a.label, "href": a.href, "plugin": plugin} for plugin, a in ordered
    ]


def esim_of(service: Service) -> dict | None:
    """MOB-2: the eSIM activation code split into what a phone's manual entry asks for."""
    code = (service.esim_activation_code or "").strip()
    if not code:
        return None
    parts = code.split("$")
    return {
        "activation_code": code,
        "smdp_address": parts[1] if len(parts) > 1 else "",
        "matching_id": parts[2] if len(parts) > 2 else "",
    }


def esim_qr(service: Service) -> str | None:
    """The eSIM activation QR code as an SVG data URI (dark on white, readable in dark mode too)."""
    esim = esim_of(service)
    if esim is None:
        return None
    qr = segno.make(esim["activation_code"], error="m", micro=False)
    return qr.svg_data_uri(scale=5, border=3, dark="#000000", light="#ffffff")


def cancel_allowed(app, service: Service) -> bool:
    """SVC-4: the operator enabled self-service cancellation and the product allows it."""
    return bool(
        app.settings.plugin("services").get("allow_cancel")
        and service.product.allow_cancel
        and service.status in LIVE
    )


def modify_allowed(service: Service) -> bool:
    """Where the product allows it, the customer may switch auto-renew on or off and change
    plan among the compatible ones (SVC-3)."""
    return bool(service.product.allow_modify and service.status in LIVE)


def describe(app, ctx, service: Service, now: datetime | None = None) -> dict:
    """Everything SVC-1 shows about a service, as the API returns it and pages render it.

    An ended service (expired, cancelled) has an end date and no renewal (SVC-1/2)."""
    live = service.status in LIVE
    return {
        "id": service.id,
        "name": service.name,
        "identifier": service.identifier,
        "service_type": service.service_type,
        "status": service.status,
        "indicator": service.indicator(now),
        "suspended_reason": service.suspended_reason,
        "product": service.product,
        "site_id": service.site_id,
        "created_at": service.created_at,
        "period_start": service.period_start,
        "renews_at": service.renews_at if live else None,
        "expires_at": service.expires_at,
        "ended_at": None if live else ended_at(service),
        "monthly_fee": money(service.monthly_fee, service.currency),
        "auto_renew": service.auto_renew,
        "pending_plan": service.pending_plan if live else None,
        "cancellable": cancel_allowed(app, service),
        "modifiable": modify_allowed(service),
        "actions": actions_for(app, ctx, service),
        "esim": esim_of(service),
    }


def ended_at(service: Service) -> datetime | None:
    """When an ended service ended: its expiry (set when it expired or was cancelled), else
    the renewal date it was not renewed on."""
    return service.expires_at or service.renews_at


def summary_counts(customer_id: int, now: datetime | None = None) -> dict:
    """Counts per status light for the dashboard card (two grouped queries)."""
    now = now or utcnow()
    counts = {k: 0 for k in ("active", "expiring", "suspended", "expired", "cancelled")}
    rows = (
        owned(Service, customer_id)
        .select(Service.status, peewee.fn.COUNT(Service.id))
        .group_by(Service.status)
        .tuples()
    )
    for status, n in rows:
        counts[status] = counts.get(status, 0) + n
    soon = now + EXPIRING_SOON
    expiring = (
        owned(Service, customer_id)
        .where(
            (Service.status == "active")
            & (
                ((Service.renews_at.is_null(False)) & (Service.renews_at < soon))
                | ((Service.expires_at.is_null(False)) & (Service.expires_at < soon))
            )
        )
        .count()
    )
    counts["active"] -= expiring
    counts["expiring"] = expiring
    return counts


def ending_soon(customer_id: int, now: datetime | None = None) -> list[Service]:
    """Live services that end within 7 days: an expiry date, or a renewal date without auto-renew."""
    now = now or utcnow()
    soon = now + EXPIRING_SOON
    return list(
        owned(Service, customer_id)
        .where(
            (Service.status == "active")
            & (
                ((Service.expires_at > now) & (Service.expires_at < soon))
                | (
                    (Service.auto_renew == False)  # noqa: E712
                    & (Service.renews_at > now)
                    & (Service.renews_at < soon)
                )
            )
        )
        .order_by(Service.id)
    )


# -- changing -------------------------------------------------------------------


def _locked(service_id: int) -> Service:
    """Re-read a service under the write lock (call inside ``locked_transaction``)."""
    return lock_rows(
        Service.select(Service, Product).join(Product).where(Service.id == service_id)
    ).get()


def contact_support(app) -> dict:
    """How to reach support, for a refusal (SUP-1): only what the operator set is non-empty."""
    support = app.settings.support
    return {
        "phone": support.phone,
        "tel": tel_uri(support.phone),
        "email": support.email,
        "chat_url": support.chat_url,
    }


def cancel(app, ctx, service: Service, reason: str = "") -> Service:
    """SVC-4: cancel at once, if allowed; refusals say how to reach support instead."""
    with locked_transaction():
        service = _locked(service.id)
        if service.status == "cancelled":
            raise Problem(409, N_("This service is already cancelled"), type="already-cancelled")
        if service.status not in LIVE:
            raise Problem(
                409, N_("This service has ended and cannot be cancelled"), type="service-ended"
            )
        if not cancel_allowed(app, service):
            support = contact_support(app)
            raise Problem(
                403,
                N_("Cancellation is not available in the portal"),
                N_("To cancel this service, contact support%(reach)s.", reach=reach_text(support)),
                type="cancel-not-allowed",
                support=support,
            )
        old = service.status
        service.status, service.auto_renew = "cancelled", False
        now = utcnow()
        if service.expires_at is None or service.expires_at > now:
            service.expires_at = now  # it ends now: the date the customer sees (SVC-1)
        service.save(only=[Service.status, Service.auto_renew, Service.expires_at])
        audit.record(
            ctx,
            "service.cancelled",
            f"service:{service.id}",
            {"name": service.name, "previous_status": old, "reason": reason},
        )
        emit(
            app,
            "service.cancelled",
            {
                "service_id": service.id,
                "service_external_id": service.external_id,
                "customer_id": service.customer_id,
                "name": service.name,
                "previous_status": old,
                "reason": reason,
                "ends_at": service.expires_at.isoformat() if service.expires_at else None,
            },
            customer_id=service.customer_id,
        )
        app.plugins.hook.service_status_changed(
            app=app,
            service=service,
            old_status=old,
            new_status="cancelled",
            reason=CANCELLED_REASON,
        )
    return service


def refuse_modify(app) -> Problem:
    """403 ``modify-not-allowed``, with how to reach support."""
    support = contact_support(app)
    return Problem(
        403,
        N_("This service cannot be changed in the portal"),
        N_("Contact support to change it%(reach)s.", reach=reach_text(support)),
        type="modify-not-allowed",
        support=support,
    )


def set_auto_renew(app, ctx, service: Service, value: bool) -> Service:
    """Switch auto-renew, where the product allows the customer to modify the service."""
    with locked_transaction():
        service = _locked(service.id)
        if not modify_allowed(service):
            raise refuse_modify(app)
        if service.auto_renew != value:
            service.auto_renew = value
            service.save(only=[Service.auto_renew])
            audit.record(
                ctx,
                "service.auto_renew_changed",
                f"service:{service.id}",
                {"name": service.name, "auto_renew": value},
            )
    return service


# -- renewal and expiry (the periodic job) ----------------------------------------


def renew(app, service_id: int, now: datetime | None = None) -> bool:
    """Move an active, auto-renewing service into its next period once its renewal date passed.

    Catches up missed periods in one step; fires ``service_renewed`` once, inside
    the transaction, so the usage plugin resets base-plan buckets atomically.
    """
    now = now or utcnow()
    with locked_transaction():
        service = _locked(service_id)
        if not (
            service.status == "active"
            and service.auto_renew
            and service.renews_at
            and service.renews_at <= now
        ):
            return False
        if service.expires_at is not None and service.expires_at <= now:
            return False  # past its end date: it expires instead
        previous = service.period_start
        step = timedelta(days=max(1, service.product.period_days))
        while service.renews_at <= now:
            service.period_start = service.renews_at
            service.renews_at = service.renews_at + step
        service.save(only=[Service.period_start, Service.renews_at])
        from plugins.services.plans import apply_pending  # plans builds on this module

        apply_pending(app, service)  # a scheduled downgrade starts with the new period (SVC-3)
        audit.record_system(
            app,
            "service.renewed",
            f"service:{service.id}",
            {
                "period_start": service.period_start.isoformat(),
                "renews_at": service.renews_at.isoformat(),
            },
            customer_id=service.customer_id,
        )
        app.plugins.hook.service_renewed(app=app, service=service, previous_period_start=previous)
    return True


def expire(app, service_id: int, now: datetime | None = None) -> bool:
    """Mark a live service expired once its expiry date, or its renewal date without auto-renew, passed."""
    now = now or utcnow()
    with locked_transaction():
        service = _locked(service_id)
        ended = (service.expires_at is not None and service.expires_at <= now) or (
            not service.auto_renew and service.renews_at is not None and service.renews_at <= now
        )
        if service.status not in LIVE or not ended:
            return False
        old = service.status
        service.status = "expired"
        if service.expires_at is None or service.expires_at > now:
            service.expires_at = service.renews_at  # ended on the renewal it was not renewed on
        service.save(only=[Service.status, Service.expires_at])
        audit.record_system(
            app,
            "service.expired",
            f"service:{service.id}",
            {"previous_status": old},
            customer_id=service.customer_id,
        )
        app.plugins.hook.service_status_changed(
            app=app, service=service, old_status=old, new_status="expired", reason=ENDED_REASON
        )
    return True


def run_renewals(app, now: datetime | None = None, limit: int = 1000) -> dict:
    """Renew what is due and expire what has ended; each service in its own transaction."""
    now = now or utcnow()
    with connection():
        due = [
            s.id
            for s in Service.select(Service.id)
            .where(
                (Service.status == "active")
                & (Service.auto_renew == True)  # noqa: E712
                & (Service.renews_at <= now)
            )
            .order_by(Service.id)
            .limit(limit)
        ]
        ended = [
            s.id
            for s in Service.select(Service.id)
            .where(
                Service.status.in_(LIVE)
                & (
                    (Service.expires_at <= now)
                    | ((Service.auto_renew == False) & (Service.renews_at <= now))  # noqa: E712
                )
            )
            .order_by(Service.id)
            .limit(limit)
        ]
        # Expire first: a service that has both expired and fallen due must not renew.
        expired = sum(expire(app, sid, now) for sid in ended)
        renewed = sum(renew(app, sid, now) for sid in due)
    return {"renewed": renewed, "expired": expired}
