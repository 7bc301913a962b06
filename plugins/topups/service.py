"""The top-up rules both faces call: the catalogue, the review, buying, crediting, auto top-up.

Money moves through billing's payment flow (``payments.new_payment`` and
``payments.charge``): the same idempotency at the provider, 3-D Secure and
reconciliation as invoices. The balance is credited inside the transaction
that records the payment as succeeded (``payment_succeeded``), so there is
never a charge without a credit being decided, nor a credit without a charge.
If the credit is refused, the purchase is refunded by a background task.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine import db, upserts
from engine.api import MAX_AMOUNT
from engine.audit import record, record_system
from engine.db import lock_rows, locked_transaction, utcnow
from engine.errors import Problem, invalid
from engine import idempotency
from engine.events import emit
from engine.i18n import N_
from engine.models import Service
from engine.notify import notify_customer
from engine.registry import Credit
from engine.theming import Formatter
from plugins.billing.public import Payment, PaymentMethod, payments
from plugins.topups.models import AutoTopup, TopupProduct, TopupPurchase

log = logging.getLogger("portico.topups")

#: Services that can be topped up: a suspended prepaid line is often suspended for want of credit.
LIVE = ("active", "suspended")
MAX_THRESHOLD = 100_000  # £1,000: a sanity bound on the auto top-up threshold
CREDIT_FAILED = N_(
    "We could not add this top-up to your balance, so your payment is being refunded."
)
NO_CARD = N_("Auto top-up needs a default card: add a card, then switch it on again.")


def settings(app) -> dict:
    return app.settings.plugin("topups") or {}


# -- the catalogue (TOP-2) -------------------------------------------------------------------


def catalogue(service_type: str | None = None, active_only: bool = True):
    return TopupProduct.listing(service_type, active_only, first_by=(TopupProduct.kind,))


def offered(service: Service) -> list[TopupProduct]:
    """What this service can buy: active products of its type, in its currency."""
    if service.status not in LIVE:
        return []
    return [p for p in catalogue(service.service_type) if p.currency == service.currency]


def types_with_topups() -> set[str]:
    """Service types that have at least one active product (one query, for service cards)."""
    return {
        r[0]
        for r in TopupProduct.select(TopupProduct.service_type)
        .where(TopupProduct.active)
        .distinct()
        .tuples()
    }


def check_product(values: dict) -> None:
    """Cross-field rules of a catalogue entry (create and edit alike): 422 with field messages."""
    errors: dict[str, list[str]] = {}
    if values.get("custom"):
        if values.get("kind") != "monetary":
            errors["custom"] = [N_("Only monetary credit can have a custom amount.")]
        low, high = values.get("min_amount"), values.get("max_amount")
        if low is None:
            errors["min_amount"] = [N_("A custom amount needs a minimum.")]
        if high is None:
            errors["max_amount"] = [N_("A custom amount needs a maximum.")]
        if low is not None and high is not None and low > high:
            errors["max_amount"] = [N_("Must be at least the minimum.")]
    else:
        if not values.get("quantity"):
            errors["quantity"] = [N_("How much the top-up adds: more than 0.")]
        if not values.get("price"):
            errors["price"] = [N_("The price, tax included, in minor units: more than 0.")]
    if errors:
        raise invalid(errors)


def _check_entry(entry: dict) -> None:
    check_product(entry)
    if entry.get("kind") == "monetary" and (entry.get("quantity") or 0) > MAX_AMOUNT:
        raise invalid(
            {
                "quantity": [
                    N_("Credit is money: at most %(amount)s minor units.", amount=MAX_AMOUNT)
                ]
            }
        )


def upsert_product(ctx, external_id: str, values: dict) -> upserts.Upserted:
    """A catalogue entry by the operator's external id (the operator API, ``portico import
    topup_products``, the demo seed); ``values`` as the operator API's
    ``OperatorTopupProductIn`` validates them. The rules of ``check_product`` apply."""
    prepare = upserts.entry_rules(TopupProduct, external_id, _check_entry)
    return upserts.upsert(ctx, TopupProduct, "topup_product", external_id, values, prepare)


def save_product(ctx, product: TopupProduct | None, values: dict) -> TopupProduct:
    """Staff create (``product`` None) or change a catalogue entry; audited."""
    return TopupProduct.save_entry(ctx, product, values, check=check_product)


@dataclass(frozen=True)
class Choice:
    """A product and the amount chosen: what would be added and what it costs."""

    product: TopupProduct
    quantity: int
    price: int

    @property
    def currency(self) -> str:
        return self.product.currency

    def expires_at(self, now: datetime) -> datetime | None:
        days = self.product.validity_days
        return now + timedelta(days=days) if days else None


def choose(service: Service, product_id, amount: int | None) -> Choice:
    """The customer's pick, checked against this service's catalogue and the operator's bounds."""
    if product_id is None:
        raise invalid({"product_id": [N_("Choose a top-up.")]})
    product = next((p for p in offered(service) if str(p.id) == str(product_id)), None)
    if product is None:
        raise invalid({"product_id": [N_("Choose one of the top-ups offered for this service.")]})
    if not product.custom:
        return Choice(product, product.quantity, product.price)
    if amount is None or not product.min_amount <= amount <= product.max_amount:
        fmt = Formatter("en", "UTC")
        raise invalid(
            {
                "amount": [
                    N_(
                        "Choose an amount from %(least)s to %(most)s.",
                        least=fmt.money(product.min_amount, product.currency),
                        most=fmt.money(product.max_amount, product.currency),
                    )
                ]
            }
        )
    return Choice(product, amount, amount)


def review(app, service: Service, choice: Choice, now: datetime | None = None) -> dict:
    """TOP-1's review: the price, what is added, when it expires and the resulting bucket order."""
    from plugins.usage.public import Policy

    now = now or utcnow()
    product = choice.product
    expires = choice.expires_at(now)
    current = [
        b
        for b in (app.plugins.hook.service_balances(app=app, service=service) or [])
        if b.type == product.kind
    ]
    new = {
        "id": None,
        "name": product.name,
        "type": product.kind,
        "remaining": choice.quantity,
        "unit": product.unit,
        "weight": product.weight,
        "expires_at": expires,
        "new": True,
    }
    rows = [
        {
            "id": b.id,
            "name": b.name,
            "type": b.type,
            "remaining": b.remaining,
            "unit": b.unit,
            "weight": b.weight,
            "expires_at": b.expires_at,
            "new": False,
        }
        for b in current
    ] + [new]
    policy = Policy.of(app)
    rows.sort(
        key=lambda r: policy.order_key(
            r["weight"], r["expires_at"], float("inf") if r["new"] else r["id"]
        )
    )
    return {
        "product": product,
        "kind": product.kind,
        "name": product.name,
        "quantity": choice.quantity,
        "unit": product.unit,
        "price": {"amount": choice.price, "currency": choice.currency},
        "weight": product.weight,
        "expires_at": expires,
        "balance_after": {
            "remaining": sum(b.remaining for b in current) + choice.quantity,
            "unit": product.unit,
        },
        "order": rows,
    }


# -- buying (TOP-1) ------------------------------------------------------------------------------


def buy(
    app, ctx, service: Service, choice: Choice, method: PaymentMethod, *, via: str = "portal"
) -> tuple[TopupPurchase, payments.Attempt]:
    """Record the purchase and its payment, commit, then charge the card.

    The balance is credited by ``credit()`` when billing records the payment as
    succeeded: at once for a plain card, after 3-D Secure otherwise. The purchase is
    remembered on the request's idempotency claim: a retry with its key settles the
    first purchase.
    """
    customer_id = ctx.require_customer()
    claim = idempotency.current()
    earlier = claim.earlier(TopupPurchase)
    if earlier is not None:
        return settle_retry(app, earlier, service, choice)
    with locked_transaction():
        purchase = _new_purchase(service, choice, via=via, user_id=ctx.principal.user_id)
        claim.remember(purchase)
        payment = payments.new_payment(
            customer_id,
            choice.price,
            choice.currency,
            method,
            purpose="topup",
            via=via,
            user_id=ctx.principal.user_id,
        )
        purchase.payment = payment
        purchase.save(only=[TopupPurchase.payment])
        record(
            ctx,
            "topup.purchase",
            f"topup:{purchase.id}",
            {
                "service": service.id,
                "product": choice.product.code,
                "price": choice.price,
                "payment": payment.id,
            },
        )
    attempt = payments.charge(app, payment)
    return TopupPurchase.get_by_id(purchase.id), attempt


def settle_retry(
    app, purchase: TopupPurchase, service: Service, choice: Choice
) -> tuple[TopupPurchase, payments.Attempt]:
    """A retry of a purchase already recorded: settle its payment with the provider (a crash
    may have lost the outcome) and answer with it, never charging again."""
    if (purchase.service_id, purchase.product_id, purchase.quantity) != (
        service.id,
        choice.product.id,
        choice.quantity,
    ):
        raise Problem(
            422,
            N_("This Idempotency-Key was used for a different request"),
            N_("Use a new key for a new request."),
            type="idempotency-key-reused",
        )
    attempt = payments.complete(app, Payment.get_by_id(purchase.payment_id))
    return TopupPurchase.get_by_id(purchase.id), attempt


def _new_purchase(
    service: Service, choice: Choice, *, via: str, user_id: int | None = None, auto: bool = False
) -> TopupPurchase:
    product = choice.product
    return TopupPurchase.create(
        customer=service.customer_id,
        service=service.id,
        product=product.id,
        kind=product.kind,
        name=product.name,
        quantity=choice.quantity,
        unit=product.unit,
        price=choice.price,
        currency=choice.currency,
        weight=product.weight,
        validity_days=product.validity_days,
        via=via,
        user_id=user_id,
        auto=auto,
    )


def purchase_of(payment: Payment) -> TopupPurchase | None:
    return lock_rows(TopupPurchase.select().where(TopupPurchase.payment == payment.id)).first()


def credit(app, payment: Payment) -> None:
    """``payment_succeeded`` for a top-up: credit the balance in the payment's transaction.

    A refused credit (the service has ended, the balance system says no) must not
    undo the recorded payment: the purchase is marked for a refund instead, which a
    task carries out after commit.
    """
    purchase = purchase_of(payment)
    if purchase is None or purchase.status in ("credited", "refunding", "refunded"):
        return
    service = Service.get_by_id(purchase.service_id)
    now = utcnow()
    expires = now + timedelta(days=purchase.validity_days) if purchase.validity_days else None
    try:
        with db.database.atomic():  # a savepoint: a failed credit leaves the payment recorded
            if service.status not in LIVE:
                raise ValueError(f"service {service.id} is {service.status}")
            bucket = app.plugins.hook.credit_balance(
                app=app,
                service=service,
                credit=Credit(
                    type=purchase.kind,
                    amount=purchase.quantity,
                    unit=purchase.unit,
                    weight=purchase.weight,
                    expires_at=expires,
                    reference=purchase.reference,
                    name=purchase.name,
                ),
            )
            if bucket is None:
                raise LookupError("no plugin applies credits (credit_balance)")
    except Exception as exc:  # noqa: BLE001 - any refusal: refund, never keep the money
        log.warning(
            "top-up %s: credit refused (%s); refunding payment %s", purchase.id, exc, payment.id
        )
        purchase.status, purchase.failure_message = "refunding", CREDIT_FAILED
        purchase.save(only=[TopupPurchase.status, TopupPurchase.failure_message])
        from plugins.topups import tasks as topups_tasks  # lazily: it imports this module

        app.tasks.enqueue(topups_tasks.refund_purchase, purchase.id)
        record_system(
            app,
            "topup.credit_failed",
            f"topup:{purchase.id}",
            {"payment": payment.id, "error": str(exc)[:200]},
            customer_id=purchase.customer_id,
            user_id=purchase.user_id,
        )
        return
    payments.invoice_purchase(
        app, payment, f"Top-up: {purchase.name} — {service.name}", service_id=service.id
    )
    purchase.status, purchase.credited_at, purchase.expires_at = "credited", now, expires
    purchase.bucket_ref = str(getattr(bucket, "id", "") or "")
    purchase.failure_message = ""
    purchase.save()
    notify_customer(
        app,
        purchase.customer_id,
        "topup_confirmed",
        f"topup-confirmed:{purchase.id}",
        "billing",
        data=notice_data(app, purchase, service),
    )
    record_system(
        app,
        "topup.credited",
        f"topup:{purchase.id}",
        {
            "service": service.id,
            "quantity": purchase.quantity,
            "unit": purchase.unit,
            "price": purchase.price,
            "auto": purchase.auto,
        },
        customer_id=purchase.customer_id,
        user_id=purchase.user_id,
    )
    emit(
        app,
        "topup.purchased",
        {
            "topup_id": purchase.id,
            "customer_id": purchase.customer_id,
            "service_id": service.id,
            "service_external_id": service.external_id,
            "quantity": purchase.quantity,
            "unit": purchase.unit,
            "price": purchase.price,
            "currency": purchase.currency,
            "auto": purchase.auto,
            "expires_at": purchase.expires_at.isoformat() if purchase.expires_at else None,
        },
        customer_id=purchase.customer_id,
    )


def declined(app, payment: Payment) -> None:
    """``payment_failed`` for a top-up: nothing was charged, nothing is added."""
    purchase = purchase_of(payment)
    if purchase is None or purchase.status != "pending":
        return
    purchase.status = "failed"
    purchase.failure_message = (payment.failure_message or payments.DECLINED)[:300]
    purchase.save(only=[TopupPurchase.status, TopupPurchase.failure_message])
    if purchase.auto:
        switch_off(app, purchase.service_id, purchase.failure_message)


def notice_data(app, purchase: TopupPurchase, service: Service) -> dict:
    return {
        "service": service.name,
        "service_id": service.id,
        "name": purchase.name,
        "kind": purchase.kind,
        "quantity": purchase.quantity,
        "unit": purchase.unit,
        "price": purchase.price,
        "currency": purchase.currency,
        "auto": purchase.auto,
        "expires_at": purchase.expires_at.isoformat() if purchase.expires_at else None,
        "url": app.url(f"/services/{service.id}/usage"),
    }


def refund_purchase(app, purchase_id: int) -> None:
    """Give back the money of a purchase whose credit was refused (a task; safe to repeat)."""
    purchase = TopupPurchase.get_or_none(TopupPurchase.id == purchase_id)
    if purchase is None or purchase.status != "refunding" or purchase.payment_id is None:
        return
    payment = Payment.get_by_id(purchase.payment_id)
    left = payment.amount - payment.refunded_amount
    if left > 0:
        payments.refund(app, payment, left)  # a provider error raises: the task retries
    with locked_transaction():
        done = (
            TopupPurchase.update(status="refunded")
            .where((TopupPurchase.id == purchase.id) & (TopupPurchase.status == "refunding"))
            .execute()
        )
        if done:
            service = Service.get_by_id(purchase.service_id)
            notify_customer(
                app,
                purchase.customer_id,
                "topup_refunded",
                f"topup-refunded:{purchase.id}",
                "billing",
                data=notice_data(app, purchase, service),
            )
            record_system(
                app,
                "topup.refunded",
                f"topup:{purchase.id}",
                {"payment": payment.id, "amount": payment.amount},
                customer_id=purchase.customer_id,
            )


# -- auto top-up (TOP-3) ---------------------------------------------------------------------------


def monetary_products(service: Service) -> list[TopupProduct]:
    return [p for p in offered(service) if p.kind == "monetary"]


def auto_choice(service: Service, amount: int) -> Choice | None:
    """The credit product an auto top-up of ``amount`` buys: a preset of that size, or custom."""
    products = monetary_products(service)
    preset = next((p for p in products if not p.custom and p.quantity == amount), None)
    if preset is not None:
        return Choice(preset, preset.quantity, preset.price)
    custom = next(
        (p for p in products if p.custom and p.min_amount <= amount <= p.max_amount), None
    )
    return Choice(custom, amount, amount) if custom is not None else None


def auto_amounts(service: Service) -> dict:
    """The amounts auto top-up may buy: the presets, and the custom bounds if there are any."""
    products = monetary_products(service)
    custom = next((p for p in products if p.custom), None)
    return {
        "presets": sorted(p.quantity for p in products if not p.custom),
        "min": custom.min_amount if custom else None,
        "max": custom.max_amount if custom else None,
    }


def auto_status(app, service: Service) -> dict | None:
    """The ``auto_topup_status`` answer: None where this service cannot buy credit."""
    rule = AutoTopup.get_or_none(AutoTopup.service == service.id)
    if rule is None:
        if not monetary_products(service):
            return None
        return {
            "enabled": False,
            "threshold": 0,
            "amount": 0,
            "currency": service.currency,
            "disabled_reason": "",
        }
    return {
        "enabled": rule.enabled,
        "threshold": rule.threshold,
        "amount": rule.amount,
        "currency": rule.currency,
        "disabled_reason": rule.disabled_reason,
    }


def set_auto(
    app, ctx, service: Service, enabled: bool, threshold: int | None, amount: int | None
) -> AutoTopup:
    """Switch auto top-up on (threshold and amount checked) or off; on below the threshold, buy now."""
    if not monetary_products(service):
        raise Problem(
            409,
            N_("Auto top-up is not available for this service"),
            N_("Only services that can buy credit can top it up automatically."),
            type="auto-topup-unavailable",
        )
    if enabled:  # IMP-6: switching on may charge the default card at once, and later
        problem = payments.saved_cards_refusal(app, ctx)
        if problem is not None:
            raise problem
    rule = AutoTopup.get_or_none(AutoTopup.service == service.id)
    sent = {k: v for k, v in (("threshold", threshold), ("amount", amount)) if v is not None}
    chosen = {
        "threshold": rule.threshold if rule else None,
        "amount": rule.amount if rule else None,
        **sent,
    }
    # Every value sent is checked, on or off: a rule switched off is stored all the same.
    # Switching on checks the values it keeps as well.
    checked = chosen if enabled else sent
    errors = {}
    if "threshold" in checked and not 1 <= (checked["threshold"] or 0) <= MAX_THRESHOLD:
        errors["threshold"] = [
            N_("Choose a threshold from 1 to %(most)s (minor units).", most=MAX_THRESHOLD)
        ]
    if "amount" in checked and (
        checked["amount"] is None or auto_choice(service, checked["amount"]) is None
    ):
        errors["amount"] = [N_("Choose one of the credit amounts on offer.")]
    if (
        enabled
        and not errors
        and not payments.cards_of(service.customer_id).where(PaymentMethod.is_default).exists()
    ):
        errors["enabled"] = [NO_CARD]
    if errors:
        raise invalid(errors)
    now = utcnow()
    with locked_transaction():
        lock_rows(Service.select().where(Service.id == service.id)).get()
        rule = AutoTopup.get_or_none(AutoTopup.service == service.id)
        values = dict(
            enabled=enabled,
            threshold=chosen["threshold"] or 0,
            amount=chosen["amount"] or 0,
            currency=service.currency,
            updated_at=now,
        )
        if enabled:
            values.update(disabled_reason="", disabled_at=None)
        if rule is None:
            rule = AutoTopup.create(customer=service.customer_id, service=service.id, **values)
        else:
            for key, value in values.items():
                setattr(rule, key, value)
            rule.save()
        record(
            ctx,
            "topup.auto_" + ("on" if enabled else "off"),
            f"service:{service.id}",
            {"threshold": rule.threshold, "amount": rule.amount},
        )
        if enabled and credit_left(app, service) < rule.threshold:
            trigger(app, service, rule, now)  # already below: switching on is a crossing
    return rule


def credit_left(app, service: Service) -> int:
    balances = app.plugins.hook.service_balances(app=app, service=service) or []
    return sum(b.remaining for b in balances if b.type == "monetary")


def watch(app, service: Service, before: dict, after: dict) -> None:
    """``usage_rated``: a fall of monetary credit through the threshold triggers one top-up.

    PERF: called per service per rated batch; only a fall of credit costs a query.
    """
    was, now_left = before.get("monetary"), after.get("monetary")
    if was is None or now_left is None or now_left >= was:
        return
    rule = AutoTopup.get_or_none((AutoTopup.service == service.id) & AutoTopup.enabled)
    if rule is not None and was >= rule.threshold > now_left:
        trigger(app, service, rule, utcnow())


def trigger(app, service: Service, rule: AutoTopup, now: datetime) -> TopupPurchase | None:
    """Record one automatic purchase and queue its charge (inside the caller's transaction)."""
    pending = TopupPurchase.select().where(
        (TopupPurchase.service == service.id)
        & TopupPurchase.auto
        & (TopupPurchase.status == "pending")
    )
    if pending.exists():
        return None  # the previous crossing's top-up is still being charged
    limit = settings(app).get("auto_daily_limit", 3)
    today = (
        TopupPurchase.select()
        .where(
            (TopupPurchase.service == service.id)
            & TopupPurchase.auto
            & (TopupPurchase.created_at > now - timedelta(days=1))
        )
        .count()
    )
    if today >= limit:
        switch_off(
            app,
            service.id,
            N_(
                "Auto top-up reached its limit of automatic top-ups "
                "in a day and was switched off, to protect your card."
            ),
        )
        return None
    choice = auto_choice(service, rule.amount)
    if choice is None:
        switch_off(
            app,
            service.id,
            N_("The auto top-up amount is no longer on offer. Choose another amount."),
        )
        return None
    purchase = _new_purchase(service, choice, via="auto", auto=True)
    AutoTopup.update(last_run_at=now).where(AutoTopup.id == rule.id).execute()
    from plugins.topups import tasks as topups_tasks  # lazily: it imports this module

    app.tasks.enqueue(topups_tasks.run_auto_topup, purchase.id)
    record_system(
        app,
        "topup.auto_triggered",
        f"topup:{purchase.id}",
        {"service": service.id, "threshold": rule.threshold, "amount": rule.amount},
        customer_id=service.customer_id,
    )
    return purchase


def run_auto(app, purchase_id: int) -> None:
    """The background charge of an automatic top-up: the default card, off-session, once."""
    with locked_transaction():
        purchase = lock_rows(TopupPurchase.select().where(TopupPurchase.id == purchase_id)).first()
        if purchase is None or purchase.status != "pending":
            return
        existing = Payment.get_by_id(purchase.payment_id) if purchase.payment_id else None
        if existing is None:
            rule = AutoTopup.get_or_none(AutoTopup.service == purchase.service_id)
            card = payments.cards_of(purchase.customer_id).where(PaymentMethod.is_default).first()
            if rule is None or not rule.enabled or card is None:
                purchase.status = "failed"
                purchase.failure_message = NO_CARD if card is None else "Auto top-up is off."
                purchase.save(only=[TopupPurchase.status, TopupPurchase.failure_message])
                if card is None:
                    switch_off(app, purchase.service_id, NO_CARD)
                return
            payment = payments.new_payment(
                purchase.customer_id,
                purchase.price,
                purchase.currency,
                card,
                purpose="topup",
                via="auto",
                off_session=True,
            )
            purchase.payment = payment
            purchase.save(only=[TopupPurchase.payment])
    if existing is not None:  # a redelivered task: settle what the first run started
        payments.reconcile(app, existing)
        return
    payments.charge(app, payment)


def switch_off(app, service_id: int, reason: str) -> None:
    """Turn auto top-up off after a failure: the customer is told by email and by an alert."""
    rule = AutoTopup.get_or_none(AutoTopup.service == service_id)
    if rule is None or not rule.enabled:
        return
    now = utcnow()
    (
        AutoTopup.update(
            enabled=False, disabled_reason=reason[:300], disabled_at=now, updated_at=now
        )
        .where(AutoTopup.id == rule.id)
        .execute()
    )
    service = Service.get_by_id(service_id)
    notify_customer(
        app,
        rule.customer_id,
        "auto_topup_failed",
        f"auto-topup-off:{rule.id}:{now.isoformat()}",
        "billing",
        data={
            "service": service.name,
            "service_id": service.id,
            "reason": reason,
            "url": app.url(f"/services/{service.id}/auto-topup"),
        },
    )
    record_system(
        app,
        "topup.auto_off",
        f"service:{service_id}",
        {"reason": reason[:200]},
        customer_id=rule.customer_id,
    )


# -- reading ------------------------------------------------------------------------------------


def purchases_of(service: Service):
    return TopupPurchase.select().where(TopupPurchase.service == service.id)


def alerts_data(customer_id: int) -> dict:
    """Auto top-ups switched off by a failure, and purchases being refunded (for the alerts)."""
    off = list(
        AutoTopup.select(AutoTopup, Service)
        .join(Service)
        .where(
            (AutoTopup.customer == customer_id)
            & ~AutoTopup.enabled
            & (AutoTopup.disabled_reason != "")
        )
    )
    refunding = list(
        TopupPurchase.select(TopupPurchase, Service)
        .join(Service)
        .where((TopupPurchase.customer == customer_id) & (TopupPurchase.status == "refunding"))
    )
    return {"off": off, "refunding": refunding}
