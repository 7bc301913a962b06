"""The add-on rules both faces call: the catalogue, ordering, provisioning, charges, removal.

Ordering an add-on records it and, if it has a one-off price, a payment through
billing's flow (idempotent at the provider, 3-D Secure, reconciliation). Once
paid (or at once, when there is nothing to pay now) a background task asks the
``provision_addon`` hook to set it up; the customer sees it pending, then
active or failed. A failure refunds the one-off price. The recurring price
becomes a transaction each period from activation (a periodic task).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from engine import upserts
from engine.audit import record, record_system
from engine.db import lock_rows, locked_transaction, utcnow
from engine.errors import Problem, invalid
from engine.events import emit
from engine.i18n import N_
from engine import idempotency
from engine.models import Service
from engine.notify import notify_customer
from plugins.billing.public import Payment, PaymentMethod, payments
from plugins.addons.models import LIVE_STATUSES, AddonProduct, ServiceAddon

log = logging.getLogger("portico.addons")

#: Services that can take add-ons.
LIVE = ("active", "suspended")
#: How long a provisioner may keep answering "pending" before the add-on is failed.
MAX_PENDING_CHECKS = 60
CHECK_AGAIN_MS = 60_000
NOT_AVAILABLE = N_("This add-on cannot be set up at the moment. Nothing has been charged for it.")
REMOVE_FAILED = N_("We could not remove this add-on. Contact support and we will take it off.")


# -- the catalogue (ADD-1) -----------------------------------------------------------------------


def catalogue(service_type: str | None = None, active_only: bool = True):
    return AddonProduct.listing(service_type, active_only)


def offered(service: Service) -> list[AddonProduct]:
    if service.status not in LIVE:
        return []
    return [p for p in catalogue(service.service_type) if p.currency == service.currency]


def types_with_addons() -> set[str]:
    return {
        r[0]
        for r in AddonProduct.select(AddonProduct.service_type)
        .where(AddonProduct.active)
        .distinct()
        .tuples()
    }


def save_product(ctx, product: AddonProduct | None, values: dict) -> AddonProduct:
    """Staff create (``product`` None) or change a catalogue entry; audited."""
    return AddonProduct.save_entry(ctx, product, values)


def addons_of(service: Service):
    return ServiceAddon.select().where(ServiceAddon.service == service.id)


def review(service: Service, product: AddonProduct) -> dict:
    """ADD-2's review: what is paid now, what each period, and whether it can be removed."""
    return {
        "product": product,
        "name": product.name,
        "category": product.category,
        "description": product.description,
        "one_off": {"amount": product.one_off_price, "currency": product.currency},
        "recurring": {"amount": product.recurring_price, "currency": product.currency},
        "period_days": product.period_days,
        "removable": product.removable,
        "pay_now": product.one_off_price > 0,
    }


def pick(service: Service, product_id) -> AddonProduct:
    if product_id is None:
        raise invalid({"product_id": [N_("Choose an add-on.")]})
    product = next((p for p in offered(service) if str(p.id) == str(product_id)), None)
    if product is None:
        raise invalid({"product_id": [N_("Choose one of the add-ons offered for this service.")]})
    return product


# -- ordering (ADD-2) --------------------------------------------------------------------------


def order(
    app,
    ctx,
    service: Service,
    product: AddonProduct,
    method: PaymentMethod | None,
    *,
    via: str = "portal",
) -> tuple[ServiceAddon, payments.Attempt | None]:
    """Record the add-on (and the payment of its one-off price), commit, then charge.

    With nothing to pay now, provisioning is queued in the same transaction.
    A service has at most one of each add-on at a time (409 otherwise). The add-on is
    remembered on the request's idempotency claim: a retry with its key settles the
    first order.
    """
    claim = idempotency.current()
    earlier = claim.earlier(ServiceAddon)
    if earlier is not None:
        if (earlier.service_id, earlier.product_id) != (service.id, product.id):
            raise Problem(
                422,
                N_("This Idempotency-Key was used for a different request"),
                N_("Use a new key for a new request."),
                type="idempotency-key-reused",
            )
        attempt = None
        if earlier.payment_id is not None:  # the outcome may have been lost: ask again
            attempt = payments.complete(app, Payment.get_by_id(earlier.payment_id))
        return ServiceAddon.get_by_id(earlier.id), attempt
    pay_now = product.one_off_price > 0
    if pay_now and method is None:
        raise invalid({"payment_method_id": [N_("You have no saved card: add one first.")]})
    with locked_transaction():
        lock_rows(Service.select().where(Service.id == service.id)).get()
        if (
            addons_of(service)
            .where((ServiceAddon.product == product.id) & ServiceAddon.status.in_(LIVE_STATUSES))
            .exists()
        ):
            raise Problem(
                409,
                N_("This service already has this add-on"),
                N_("It is active or being set up; see its status on the add-ons page."),
                type="addon-exists",
            )
        addon = ServiceAddon.create(
            customer=service.customer_id,
            service=service.id,
            product=product.id,
            name=product.name,
            category=product.category,
            one_off_price=product.one_off_price,
            recurring_price=product.recurring_price,
            currency=product.currency,
            period_days=product.period_days,
            provisioner=product.provisioner,
            removable=product.removable,
            status="awaiting_payment" if pay_now else "pending",
            via=via,
            user_id=ctx.principal.user_id,
        )
        claim.remember(addon)
        payment = None
        if pay_now and method is not None:  # None with pay_now was refused above
            payment = payments.new_payment(
                service.customer_id,
                product.one_off_price,
                product.currency,
                method,
                purpose="addon",
                via=via,
                user_id=ctx.principal.user_id,
            )
            addon.payment = payment
            addon.save(only=[ServiceAddon.payment])
        else:
            from plugins.addons import tasks as addons_tasks  # lazily: it imports this module

            app.tasks.enqueue(addons_tasks.provision, addon.id)
            _emit(app, "addon.ordered", addon, service)
        record(
            ctx,
            "addon.ordered",
            f"addon:{addon.id}",
            {
                "service": service.id,
                "product": product.code,
                "one_off": product.one_off_price,
                "recurring": product.recurring_price,
            },
        )
    attempt = payments.charge(app, payment) if payment is not None else None
    return ServiceAddon.get_by_id(addon.id), attempt


def addon_of(payment: Payment) -> ServiceAddon | None:
    return lock_rows(ServiceAddon.select().where(ServiceAddon.payment == payment.id)).first()


def paid(app, payment: Payment) -> None:
    """``payment_succeeded`` for an add-on: a receipt, then provisioning (same transaction)."""
    addon = addon_of(payment)
    if addon is None or addon.status not in ("awaiting_payment", "canceled"):
        return
    service = Service.get_by_id(addon.service_id)
    payments.invoice_purchase(
        app, payment, f"{addon.name} — one-off — {service.name}", service_id=service.id
    )
    addon.status, addon.failure_message = "pending", ""
    addon.save(only=[ServiceAddon.status, ServiceAddon.failure_message])
    from plugins.addons import tasks as addons_tasks  # lazily: it imports this module

    app.tasks.enqueue(addons_tasks.provision, addon.id)
    _emit(app, "addon.ordered", addon, service)
    record_system(
        app,
        "addon.paid",
        f"addon:{addon.id}",
        {"payment": payment.id},
        customer_id=addon.customer_id,
        user_id=addon.user_id,
    )


def not_paid(app, payment: Payment) -> None:
    """``payment_failed``: the add-on is not ordered after all."""
    addon = addon_of(payment)
    if addon is None or addon.status != "awaiting_payment":
        return
    addon.status = "canceled"
    addon.failure_message = (payment.failure_message or payments.DECLINED)[:300]
    addon.save(only=[ServiceAddon.status, ServiceAddon.failure_message])


# -- provisioning ------------------------------------------------------------------------------


def provision(app, addon_id: int, now: datetime | None = None) -> None:
    """Ask the provisioner to set up (or take off) an add-on and record its answer once.

    Runs in a task, outside any transaction while the provisioner works; a
    repeated delivery finds the add-on settled and does nothing.
    """
    addon = ServiceAddon.get_or_none(ServiceAddon.id == addon_id)
    if addon is None or addon.status not in ("pending", "removing"):
        return
    action = "activate" if addon.status == "pending" else "remove"
    service = Service.get_by_id(addon.service_id)
    answer = app.plugins.hook.provision_addon(app=app, service=service, addon=addon, action=action)
    if answer is None:
        log.warning("add-on %s: no provisioner answers for '%s'", addon.id, addon.provisioner)
        answer = {"status": "failed", "message": NOT_AVAILABLE}
    outcome = answer.get("status")
    now = now or utcnow()
    with locked_transaction():
        addon = lock_rows(ServiceAddon.select().where(ServiceAddon.id == addon_id)).get()
        expected = "pending" if action == "activate" else "removing"
        if addon.status != expected:
            return  # settled by another delivery meanwhile
        if outcome == "pending":
            _check_again(app, addon, action)
        elif action == "activate" and outcome == "active":
            _activate(app, addon, service, answer, now)
        elif action == "activate":
            _fail(app, addon, service, answer.get("message") or NOT_AVAILABLE)
        elif outcome == "active":
            _removed(app, addon, service, now)
        else:
            addon.status, addon.failure_message = "active", REMOVE_FAILED
            addon.save(only=[ServiceAddon.status, ServiceAddon.failure_message])
            record_system(
                app,
                "addon.remove_failed",
                f"addon:{addon.id}",
                {"message": str(answer.get("message", ""))[:200]},
                customer_id=addon.customer_id,
            )


def _check_again(app, addon: ServiceAddon, action: str) -> None:
    addon.attempts += 1
    if addon.attempts > MAX_PENDING_CHECKS:  # an hour of "pending": give up, say so
        if action == "activate":
            _fail(app, addon, Service.get_by_id(addon.service_id), NOT_AVAILABLE)
        else:
            addon.status, addon.failure_message = "active", REMOVE_FAILED
            addon.save(
                only=[ServiceAddon.status, ServiceAddon.failure_message, ServiceAddon.attempts]
            )
        return
    addon.save(only=[ServiceAddon.attempts])
    from plugins.addons import tasks as addons_tasks  # lazily: it imports this module

    app.tasks.enqueue(addons_tasks.provision, addon.id, delay_ms=CHECK_AGAIN_MS)


def _activate(app, addon: ServiceAddon, service: Service, answer: dict, now: datetime) -> None:
    addon.status, addon.activated_at, addon.failure_message = "active", now, ""
    addon.reference = answer.get("reference") or None
    addon.detail = str(answer.get("detail") or "")[:200]
    addon.save()
    if addon.recurring_price > 0:
        _charge_period(app, addon, service, now)
    notify_customer(
        app,
        addon.customer_id,
        "addon_active",
        f"addon-active:{addon.id}",
        "service",
        data=notice_data(app, addon, service),
    )
    _emit(app, "addon.provisioned", addon, service)
    record_system(
        app,
        "addon.active",
        f"addon:{addon.id}",
        {"reference": addon.reference},
        customer_id=addon.customer_id,
        user_id=addon.user_id,
    )


def _fail(app, addon: ServiceAddon, service: Service, message: str) -> None:
    addon.status, addon.failure_message = "failed", str(message)[:300]
    addon.save(only=[ServiceAddon.status, ServiceAddon.failure_message, ServiceAddon.attempts])
    refund = addon.payment_id is not None
    if refund:
        from plugins.addons import tasks as addons_tasks  # lazily: it imports this module

        app.tasks.enqueue(addons_tasks.refund, addon.id)
    notify_customer(
        app,
        addon.customer_id,
        "addon_failed",
        f"addon-failed:{addon.id}",
        "service",
        data={
            **notice_data(app, addon, service),
            "refund": refund,
            "message": addon.failure_message,
        },
    )
    _emit(app, "addon.failed", addon, service)
    record_system(
        app,
        "addon.failed",
        f"addon:{addon.id}",
        {"message": addon.failure_message},
        customer_id=addon.customer_id,
        user_id=addon.user_id,
    )


def _removed(app, addon: ServiceAddon, service: Service, now: datetime) -> None:
    addon.status, addon.removed_at, addon.next_charge_at = "removed", now, None
    addon.reference = None  # released: the provisioner may give it to someone else
    addon.save()
    notify_customer(
        app,
        addon.customer_id,
        "addon_removed",
        f"addon-removed:{addon.id}",
        "service",
        data=notice_data(app, addon, service),
    )
    record_system(app, "addon.removed", f"addon:{addon.id}", {}, customer_id=addon.customer_id)


def _emit(app, event_type: str, addon: ServiceAddon, service: Service) -> None:
    """An add-on event for the operator's systems (INT-6), in the caller's transaction."""
    data = {
        "addon_id": addon.id,
        "status": addon.status,
        "product": addon.product.code if addon.product_id else None,
        "name": addon.name,
        "provisioner": addon.provisioner,
        "service_id": service.id,
        "service_external_id": service.external_id,
        "customer_id": addon.customer_id,
        "reference": addon.reference,
        "detail": addon.detail,
        "failure_message": addon.failure_message,
        "one_off_price": addon.one_off_price,
        "recurring_price": addon.recurring_price,
        "currency": addon.currency,
    }
    emit(app, event_type, data, customer_id=addon.customer_id)


def settle(app, addon_id: int, outcome: str, answer: dict) -> ServiceAddon | None:
    """An outside provisioner's answer (the ``webhook`` provisioner, INT-6): ``outcome`` is
    "active" or "failed" for the set-up or removal now waiting; ``answer`` may hold
    ``reference``, ``detail`` or ``message``. None for an unknown add-on; 409 when it is
    not waiting for this provisioner."""
    with locked_transaction():
        addon = lock_rows(ServiceAddon.select().where(ServiceAddon.id == addon_id)).first()
        if addon is None:
            return None
        if addon.provisioner != "webhook" or addon.status not in ("pending", "removing"):
            raise Problem(
                409,
                N_("This add-on is not waiting for an answer"),
                N_(
                    "It is %(status)s (provisioner %(provisioner)s).",
                    status=addon.status,
                    provisioner=addon.provisioner,
                ),
                type="addon-not-waiting",
            )
        service = Service.get_by_id(addon.service_id)
        if addon.status == "pending" and outcome == "active":
            _activate(app, addon, service, answer, utcnow())
        elif addon.status == "pending":
            _fail(app, addon, service, answer.get("message") or NOT_AVAILABLE)
        elif outcome == "active":
            _removed(app, addon, service, utcnow())
        else:
            addon.status, addon.failure_message = "active", REMOVE_FAILED
            addon.save(only=[ServiceAddon.status, ServiceAddon.failure_message])
    return ServiceAddon.get_by_id(addon_id)


def notice_data(app, addon: ServiceAddon, service: Service) -> dict:
    return {
        "name": addon.name,
        "service": service.name,
        "service_id": service.id,
        "detail": addon.detail,
        "one_off": addon.one_off_price,
        "recurring": addon.recurring_price,
        "currency": addon.currency,
        "period_days": addon.period_days,
        "url": app.url(f"/services/{service.id}/addons/{addon.id}"),
    }


def refund(app, addon_id: int) -> None:
    """Give back the one-off price of an add-on that could not be set up (a task; repeatable)."""
    addon = ServiceAddon.get_or_none(ServiceAddon.id == addon_id)
    if addon is None or addon.status != "failed" or addon.payment_id is None:
        return
    payment = Payment.get_by_id(addon.payment_id)
    left = payment.amount - payment.refunded_amount
    if payment.status == "succeeded" and left > 0:
        payments.refund(app, payment, left)  # a provider error raises: the task retries
        record_system(
            app,
            "addon.refunded",
            f"addon:{addon.id}",
            {"payment": payment.id, "amount": left},
            customer_id=addon.customer_id,
        )
    if payment.status == "succeeded":  # also on a retry after the refund itself went through
        payments.reverse_purchase(app, payment, f"Cancelled: {addon.name} (not set up)")


# -- recurring charges -------------------------------------------------------------------------


def _charge_period(app, addon: ServiceAddon, service: Service, start: datetime) -> None:
    """The recurring price of one period from ``start`` becomes a transaction (once)."""
    period = addon.charged_periods + 1
    end = start + timedelta(days=addon.period_days)
    payments.record_inclusive_charge(
        app,
        addon.customer_id,
        price=addon.recurring_price,
        currency=addon.currency,
        description=f"{addon.name} — {service.name} — {start:%d %b %Y} to {end:%d %b %Y}",
        service_id=service.id,
        reference=f"addon:{addon.id}:{period}",
        occurred_at=start,
    )
    addon.charged_periods, addon.next_charge_at = period, end
    addon.save(only=[ServiceAddon.charged_periods, ServiceAddon.next_charge_at])


def charge_due(app, now: datetime | None = None) -> int:
    """Each active add-on whose period has come round is charged for it (catching up on
    periods missed while the scheduler was down); returns how many periods were charged."""
    now = now or utcnow()
    due = [
        a.id
        for a in ServiceAddon.select(ServiceAddon.id)
        .where(
            (ServiceAddon.status == "active")
            & (ServiceAddon.recurring_price > 0)
            & (ServiceAddon.next_charge_at <= now)
        )
        .order_by(ServiceAddon.id)
        .limit(1000)
    ]
    charged = 0
    for addon_id in due:
        with locked_transaction():
            addon = lock_rows(ServiceAddon.select().where(ServiceAddon.id == addon_id)).get()
            service = Service.get_by_id(addon.service_id)
            while (
                addon.status == "active"
                and addon.next_charge_at is not None
                and addon.next_charge_at <= now
            ):
                _charge_period(app, addon, service, addon.next_charge_at)
                charged += 1
    return charged


# -- removal -----------------------------------------------------------------------------------


def remove(app, ctx, addon: ServiceAddon) -> ServiceAddon:
    """Take an add-on off, where the product allows it: no more charges once it is removed."""
    if not addon.removable:
        raise Problem(
            409,
            N_("This add-on cannot be removed online"),
            N_("Contact support to end it (equipment may need to be returned)."),
            type="addon-not-removable",
        )
    with locked_transaction():
        addon = lock_rows(ServiceAddon.select().where(ServiceAddon.id == addon.id)).get()
        if addon.status != "active":
            raise Problem(409, N_("Only an active add-on can be removed"), type="addon-not-active")
        addon.status, addon.failure_message, addon.attempts = "removing", "", 0
        addon.save(only=[ServiceAddon.status, ServiceAddon.failure_message, ServiceAddon.attempts])
        from plugins.addons import tasks as addons_tasks  # lazily: it imports this module

        app.tasks.enqueue(addons_tasks.provision, addon.id)
        _emit(app, "addon.cancelled", addon, Service.get_by_id(addon.service_id))
        record(ctx, "addon.remove", f"addon:{addon.id}", {"service": addon.service_id})
    return addon


def upsert_product(ctx, external_id: str, values: dict) -> upserts.Upserted:
    """A catalogue entry by the operator's external id (the operator API, ``portico import
    addon_products``, the demo seed); ``values`` as the operator API's
    ``OperatorAddonProductIn`` validates them."""
    prepare = upserts.entry_rules(AddonProduct, external_id)
    return upserts.upsert(ctx, AddonProduct, "addon_product", external_id, values, prepare)
