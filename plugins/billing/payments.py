"""Taking money: saved cards (BILL-5), paying an invoice (BILL-2), refunds, reconciliation.

Money moves at most once per payment, whatever fails:

1. *Claim* — in a locked transaction: the invoice is still open and has no
   payment in flight; a ``Payment`` row (``pending``) is written and committed.
   A second, simultaneous payment of the same invoice finds it and stops.
2. *Charge* — the provider creates its payment object; its reference is
   committed to the ``Payment`` row (``on_created``) before money moves.
3. *Record* — in a locked transaction: the result is applied once (a payment
   already final is left alone): invoice paid, a transaction, the
   "payment received" notice and the ``payment_succeeded`` event.

If the process dies between 2 and 3, ``reconcile()`` (a periodic job, a
webhook, or the client's retry) asks the provider and records the truth once.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any, overload

import peewee

from engine import db, roles
from engine.audit import record, record_system
from engine.context import IMPERSONATION_TITLE, get_owned
from engine.db import locked_transaction, lock_rows, utcnow
from engine.errors import Problem, invalid
from engine.events import emit
from engine.i18n import N_
from engine.models import Customer
from engine.notify import notify_customer
from engine.payments import (
    CANCELED,
    FAILED,
    NOT_CONFIRMED,
    PROCESSING,
    REQUIRES_ACTION,
    SUCCEEDED,
    ChargeRequest,
    ChargeResult,
    PaymentError,
    PaymentProvider,
)
from plugins.billing import payall
from plugins.billing.invoicing import apply_payment
from plugins.billing.models import (
    OPEN_PAYMENT,
    Invoice,
    Payment,
    PaymentMethod,
    ProviderCustomer,
    Transaction,
)

log = logging.getLogger("portico.billing")

#: A pending payment younger than this may still be in another process's hands.
IN_FLIGHT = timedelta(minutes=2)
#: A customer who has not finished 3-D Secure by then has given up.
ABANDONED = timedelta(hours=1)
DECLINED = N_("Your card was declined. No money was taken; try another card.")


# -- providers ------------------------------------------------------------------------


def provider_for(app, provider_id: str | None = None) -> PaymentProvider:
    """The provider named ``provider_id``, or the operator's default (``[billing] provider``)."""
    wanted = provider_id or app.settings.plugin("billing").provider
    found = app.providers.get(wanted)
    if found is None:
        raise Problem(
            503,
            N_("Card payments are not available right now"),
            N_("Please try again later, or contact support."),
            type="provider-unavailable",
        )
    return found


def customer_ref(app, provider: PaymentProvider, customer_id: int) -> str:
    """The customer's record at ``provider``, created on first use."""
    row = ProviderCustomer.get_or_none(
        (ProviderCustomer.customer == customer_id) & (ProviderCustomer.provider == provider.id)
    )
    if row is not None:
        return row.ref
    customer = Customer.get_by_id(customer_id)
    primary = customer.contacts.order_by(peewee.SQL("is_primary DESC")).first()
    ref = _provider_call(provider.ensure_customer, app, customer, primary.email if primary else "")
    try:
        with db.database.atomic():
            ProviderCustomer.create(customer=customer_id, provider=provider.id, ref=ref)
    except peewee.IntegrityError:  # created concurrently: use the one that was stored first
        return ProviderCustomer.get(
            (ProviderCustomer.customer == customer_id) & (ProviderCustomer.provider == provider.id)
        ).ref
    return ref


def _provider_call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except PaymentError as exc:
        status = 503 if exc.retryable else 402
        raise Problem(status, exc.message, type=exc.code.replace("_", "-")) from None


# -- saved cards (BILL-5) ---------------------------------------------------------------


def start_setup(app, customer_id: int, provider_id: str | None = None):
    """Begin adding a card: returns (provider, SetupSession) for the provider's widget."""
    provider = provider_for(app, provider_id)
    ref = customer_ref(app, provider, customer_id)
    return provider, _provider_call(provider.start_setup, app, ref)


def save_card(
    app,
    ctx,
    customer_id: int,
    setup_ref: str,
    token: str = "",
    *,
    make_default: bool = False,
    provider_id: str | None = None,
    single_use: bool = False,
) -> PaymentMethod:
    """Store the card of a finished setup (the provider confirms it is this customer's).

    A ``single_use`` card pays once and is then forgotten; it is never listed.
    """
    provider = provider_for(app, provider_id)
    ref = customer_ref(app, provider, customer_id)
    card = _provider_call(provider.finish_setup, app, ref, setup_ref, token)
    with locked_transaction():
        method = PaymentMethod.get_or_none(
            (PaymentMethod.provider == provider.id) & (PaymentMethod.ref == card.ref)
        )
        if method is not None:
            if method.customer_id != customer_id:  # never adopt someone else's card
                raise Problem(404, N_("Not found"))
            return method
        has_default = (
            single_use
            or PaymentMethod.select()
            .where((PaymentMethod.customer == customer_id) & PaymentMethod.is_default)
            .exists()
        )
        if make_default and has_default and not single_use:
            (
                PaymentMethod.update(is_default=False)
                .where(PaymentMethod.customer == customer_id)
                .execute()
            )
        method = PaymentMethod.create(
            customer=customer_id,
            provider=provider.id,
            ref=card.ref,
            brand=card.brand,
            last4=card.last4,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
            is_default=not single_use and (make_default or not has_default),
            single_use=single_use,
        )
        if ctx is not None and not single_use:
            record(
                ctx,
                "payment_method.added",
                f"payment_method:{method.id}",
                {"label": method.label, "default": method.is_default},
            )
    return method


def set_default(app, ctx, method: PaymentMethod) -> PaymentMethod:
    """Make a saved card the default (the one auto top-ups charge): ACCT-7, a manager's job."""
    roles.require(ctx.principal, "payment_methods")
    with locked_transaction():
        (
            PaymentMethod.update(is_default=(PaymentMethod.id == method.id))
            .where(PaymentMethod.customer == method.customer_id)
            .execute()
        )
        record(
            ctx, "payment_method.default", f"payment_method:{method.id}", {"label": method.label}
        )
    return PaymentMethod.get_by_id(method.id)


def delete_card(app, ctx, method: PaymentMethod) -> None:
    """Forget a card here and at the provider; the newest other card becomes the default.

    Customers need the ``payment_methods`` power (ACCT-7); ``ctx`` None is the system's
    own clean-up."""
    if ctx is not None:
        roles.require(ctx.principal, "payment_methods")
    provider = app.providers.get(method.provider)
    if provider is not None:
        ref = customer_ref(app, provider, method.customer_id)
        _provider_call(provider.detach, app, ref, method.ref)
    with locked_transaction():
        PaymentMethod.delete().where(PaymentMethod.id == method.id).execute()
        if method.is_default:
            newest = cards_of(method.customer_id).order_by(PaymentMethod.id.desc()).first()
            if newest is not None:
                newest.is_default = True
                newest.save(only=[PaymentMethod.is_default])
        if ctx is not None and not method.single_use:
            record(
                ctx,
                "payment_method.deleted",
                f"payment_method:{method.id}",
                {"label": method.label},
            )


def cards_of(customer_id: int):
    """The customer's saved cards, the default first."""
    return PaymentMethod.for_customer(customer_id).order_by(
        PaymentMethod.is_default.desc(), PaymentMethod.id.desc()
    )


def expiring_cards(app, customer_id: int, now=None) -> list[PaymentMethod]:
    """Cards that have expired or expire within ``[billing] card_expiry_warning_days``."""
    now = now or utcnow()
    horizon = now + timedelta(days=app.settings.plugin("billing").card_expiry_warning_days)
    # A card is valid through the last day of its expiry month: it lapses before the
    # horizon when its month is earlier than the horizon's.
    return [c for c in cards_of(customer_id) if c.expires_before(horizon.year, horizon.month)]


# -- paying an invoice (BILL-2) -----------------------------------------------------------


class Attempt:
    """The outcome of a payment attempt: the row, and what the browser needs for 3-D Secure."""

    def __init__(self, payment: Payment, client_secret: str = ""):
        self.payment = payment
        self.client_secret = client_secret

    @property
    def status(self) -> str:
        return self.payment.status


def pay_invoice(
    app,
    invoice_id: int,
    method: PaymentMethod,
    *,
    via: str = "portal",
    user_id: int | None = None,
    guest_link_id: int | None = None,
) -> Attempt:
    """Charge ``method`` for what the invoice still owes (the server's amount, never the client's).

    Raises ``Problem`` 409 when the invoice is paid or another payment of it is
    in flight. A decline is a failed ``Attempt`` (no exception): the invoice
    stays unpaid.
    """
    payment = _claim(app, invoice_id, method, via, user_id, guest_link_id)
    return _charge(app, payment, method)


IN_PROGRESS = N_("A payment of this invoice is already in progress")


def _claim(app, invoice_id, method, via, user_id, guest_link_id) -> Payment:
    def claim() -> tuple[Payment | None, Payment | None]:
        invoice = lock_rows(Invoice.select().where(Invoice.id == invoice_id)).get()
        if not invoice.is_open or invoice.amount_due <= 0:
            raise Problem(409, N_("This invoice is already paid"), type="invoice-paid")
        in_flight = payall.open_payment_of([invoice.id])
        if in_flight is not None:
            return None, in_flight
        return Payment.create(
            customer=invoice.customer_id,
            invoice=invoice.id,
            purpose="invoice",
            amount=invoice.amount_due,
            currency=invoice.currency,
            provider=method.provider,
            method=method.id,
            method_label=method.label,
            attempt_key=f"pay-{uuid.uuid4().hex}",
            via=via,
            user_id=user_id,
            guest_link=guest_link_id,
            detach_after=method.single_use,
        ), None

    return _claim_once(app, claim, IN_PROGRESS)


def _claim_once(app, claim, busy: str) -> Payment:
    """Run ``claim`` in a locked transaction: it locks the invoices and returns (the new
    payment, None), or (None, the payment in flight of one of them). That attempt is settled
    with the provider (outside the lock) and the claim tried once more; 409 when it is really
    still in flight."""
    for _ in range(2):
        with locked_transaction():
            payment, in_flight = claim()
            if payment is not None:
                return payment
        # Another attempt exists: settle it with the provider, then retry.
        settled = reconcile(app, in_flight, abandon=in_flight.status == REQUIRES_ACTION)
        if settled.status in OPEN_PAYMENT:
            raise Problem(
                409, busy, N_("Wait a moment and reload the invoice."), type="payment-in-progress"
            )
    raise Problem(409, busy, type="payment-in-progress")


# -- paying every unpaid invoice at once (BILL-8) -----------------------------------------------

ALL_IN_PROGRESS = N_("A payment of one of these invoices is already in progress")
ALL_CHANGED = N_("Some of these invoices have changed since you saw them")
NOTHING_TO_PAY = N_("You have no invoices to pay")


def pay_invoices(
    app,
    customer_id: int,
    method: PaymentMethod,
    *,
    invoice_ids: list[int] | None = None,
    currency: str | None = None,
    via: str = "portal",
    user_id: int | None = None,
) -> Attempt:
    """Charge ``method`` once for everything the customer's open invoices owe, then mark
    each paid (BILL-8). ``invoice_ids``: exactly those (what the customer was shown), else
    every open invoice of ``currency`` (needed only when they owe in several).

    The set and the amount are the server's, fixed when the payment is claimed
    (``payall``). 409 when there is nothing to pay, one of ``invoice_ids`` has been paid
    meanwhile, or one of them has a payment in flight; a foreign id is a 404. A decline is a
    failed ``Attempt``: every invoice stays unpaid.
    """
    chosen = sorted(set(invoice_ids or []))

    def claim() -> tuple[Payment | None, Payment | None]:
        invoices = _payable_now(customer_id, chosen, currency)
        in_flight = payall.open_payment_of([i.id for i in invoices])
        if in_flight is not None:
            return None, in_flight
        payment = Payment.create(
            customer=customer_id,
            purpose=payall.PAY_ALL,
            amount=sum(i.amount_due for i in invoices),
            currency=invoices[0].currency,
            provider=method.provider,
            method=method.id,
            method_label=method.label,
            attempt_key=f"pay-{uuid.uuid4().hex}",
            via=via,
            user_id=user_id,
            detach_after=method.single_use,
        )
        payall.allocate(payment, invoices)
        return payment, None

    payment = _claim_once(app, claim, ALL_IN_PROGRESS)
    return _charge(app, payment, method)


def _payable_now(customer_id: int, chosen: list[int], currency: str | None) -> list[Invoice]:
    """The invoices a payment of several pays, locked in id order (inside its claim)."""
    query = Invoice.select().where(Invoice.customer == customer_id).order_by(Invoice.id)
    if chosen:
        invoices = list(lock_rows(query.where(Invoice.id.in_(chosen))))
        if len(invoices) != len(chosen):  # another's, or no invoice at all
            raise Problem(404, N_("Not found"))
        if any(not i.is_open or i.amount_due <= 0 for i in invoices):
            raise Problem(
                409,
                ALL_CHANGED,
                N_("Nothing was charged. Reload to see what is left to pay."),
                type="invoice-paid",
            )
    else:
        invoices = [
            i
            for i in lock_rows(query.where(Invoice.status.in_(payall.OPEN_INVOICE)))
            if i.amount_due > 0 and (currency is None or i.currency == currency.upper())
        ]
    if not invoices:
        raise Problem(409, NOTHING_TO_PAY, type="invoice-paid")
    currencies = sorted({i.currency for i in invoices})
    if len(currencies) > 1:
        field = "invoice_ids" if chosen else "currency"
        raise invalid(
            {
                field: [
                    N_(
                        "One currency at a time: you owe in %(currencies)s.",
                        currencies=", ".join(currencies),
                    )
                ]
            }
        )
    return invoices


def _charge(app, payment: Payment, method: PaymentMethod) -> Attempt:
    provider = provider_for(app, payment.provider)
    request = ChargeRequest(
        customer_ref=customer_ref(app, provider, payment.customer_id),
        method_ref=method.ref,
        amount=payment.amount,
        currency=payment.currency,
        idempotency_key=payment.attempt_key,
        off_session=payment.off_session,
        description=_description(payment),
        metadata={
            "portico_payment": str(payment.id),
            "portico_invoice": str(payment.invoice_id or ""),
            **(
                {"portico_invoices": ",".join(map(str, payall.invoice_ids(payment)))[:500]}
                if payment.purpose == payall.PAY_ALL
                else {}
            ),
        },
    )

    def remember(ref: str) -> None:
        # Committed on its own before money moves: a lost answer is reconciled, not re-charged.
        (
            Payment.update(provider_ref=ref, updated_at=utcnow())
            .where(Payment.id == payment.id)
            .execute()
        )

    try:
        result = provider.charge(app, request, on_created=remember)
    except PaymentError as exc:
        current = Payment.get_by_id(payment.id)
        if current.provider_ref:
            log.warning(
                "payment %s: provider error after creation (%s); reconciling", payment.id, exc.code
            )
            return Attempt(reconcile(app, current))
        return Attempt(_fail(app, payment.id, exc.code, exc.message))
    return Attempt(record_result(app, payment.id, result), result.client_secret)


def _description(payment: Payment) -> str:
    if payment.invoice_id:
        return f"Invoice {payment.invoice.number}"
    if payment.purpose == payall.PAY_ALL:
        numbers = Invoice.select(Invoice.number).where(Invoice.id.in_(payall.invoice_ids(payment)))
        return "Invoices " + ", ".join(i.number for i in numbers.order_by(Invoice.id))
    return payment.purpose.title()


def _three_d_secure(seen: str, result: ChargeResult) -> str:
    """The 3-D Secure outcome to keep: the provider's word, else what we saw happen (the
    bank asked, then the payment went through or failed)."""
    if result.three_d_secure:
        return result.three_d_secure
    if result.status == REQUIRES_ACTION:
        return "required"
    if seen == "required" and result.status == SUCCEEDED:
        return "authenticated"
    if seen == "required" and result.status == FAILED:
        return "failed"
    return seen


def record_result(app, payment_id: int, result: ChargeResult) -> Payment:
    """Apply what the provider says to a payment, once (a final payment is left as it is)."""
    if result.status == SUCCEEDED:
        return _succeed(app, payment_id, result)
    if result.status in (FAILED, CANCELED):
        message = result.message or DECLINED
        return _fail(
            app,
            payment_id,
            result.code or "card_declined",
            message,
            status="canceled" if result.status == CANCELED else "failed",
            result=result,
        )
    with locked_transaction():
        payment = lock_rows(Payment.select().where(Payment.id == payment_id)).get()
        if payment.status in OPEN_PAYMENT:
            payment.status = "requires_action" if result.status == REQUIRES_ACTION else "pending"
            payment.provider_ref = payment.provider_ref or result.ref
            payment.three_d_secure = _three_d_secure(payment.three_d_secure, result)
            payment.updated_at = utcnow()
            payment.save()
        return payment


def _succeed(app, payment_id: int, result: ChargeResult) -> Payment:
    now = utcnow()
    with locked_transaction():
        payment = lock_rows(Payment.select().where(Payment.id == payment_id)).get()
        if payment.status == "succeeded":
            return payment  # recorded already (a retry, a webhook, the reconciler)
        if payment.status not in OPEN_PAYMENT:
            # Final as failed, but the provider says it succeeded: the provider is the truth.
            log.error(
                "payment %s was %s here but succeeded at the provider; recording it",
                payment.id,
                payment.status,
            )
        payment.status, payment.succeeded_at, payment.updated_at = "succeeded", now, now
        payment.provider_ref = payment.provider_ref or result.ref
        payment.three_d_secure = _three_d_secure(payment.three_d_secure, result)
        payment.failure_code = payment.failure_message = ""
        payment.save()
        invoice = None
        paid: list[Invoice] = []
        if payment.purpose == payall.PAY_ALL:  # one charge, spread over its invoices (BILL-8)
            paid = payall.apply(app, payment, now, _payment_text(payment))
        else:
            if payment.invoice_id:
                invoice = lock_rows(Invoice.select().where(Invoice.id == payment.invoice_id)).get()
                was = invoice.status
                apply_payment(invoice, payment.amount, now)
                if invoice.status == "paid" and was != "paid":
                    payall.emit_invoice_paid(app, invoice, payment)
            Transaction.create(
                customer=payment.customer_id,
                kind="payment",
                occurred_at=now,
                description=_payment_text(payment),
                amount=-payment.amount,
                currency=payment.currency,
                invoice=payment.invoice_id,
                payment=payment.id,
                reference=f"payment:{payment.id}",
            )
        numbers = ", ".join(i.number for i in paid)
        notify_customer(
            app,
            payment.customer_id,
            "payment_received",
            f"payment-received:{payment.id}",
            "billing",
            data={
                "amount": payment.amount,
                "currency": payment.currency,
                "method": payment.method_label,
                "invoice": invoice.number if invoice else "",
                "invoice_url": app.url(f"/billing/invoices/{invoice.id}") if invoice else "",
                "invoices": numbers,
                "invoices_url": app.url("/billing") if paid else "",
                "reference": payment.provider_ref,
                "paid_at": now.isoformat(),
            },
        )
        record_system(
            app,
            "payment.succeeded",
            f"payment:{payment.id}",
            {
                "amount": payment.amount,
                "currency": payment.currency,
                "invoice": invoice.number if invoice else (numbers or None),
                "via": payment.via,
            },
            customer_id=payment.customer_id,
            user_id=payment.user_id,
        )
        emit(
            app,
            "payment.succeeded",
            _event_data(payment, invoice),
            customer_id=payment.customer_id,
        )
        if payment.detach_after and payment.method_id:
            from plugins.billing import tasks as billing_tasks  # lazily: it imports this module

            app.tasks.enqueue(billing_tasks.forget_card, payment.method_id)
        app.plugins.hook.payment_succeeded(app=app, payment=payment)
    return payment


def _event_data(payment: Payment, invoice: Invoice | None = None) -> dict:
    """What the payment events tell the operator's systems (INT-6): the invoice by Portico's
    id, its number and, for an invoice the operator's billing pushed in, its external id."""
    if invoice is None and payment.invoice_id:
        invoice = Invoice.get_by_id(payment.invoice_id)
    return {
        "payment_id": payment.id,
        "customer_id": payment.customer_id,
        "amount": payment.amount,
        "currency": payment.currency,
        "status": payment.status,
        "purpose": payment.purpose,
        "invoice_id": payment.invoice_id,
        "invoice_number": invoice.number if invoice else None,
        "invoice_external_id": invoice.external_id if invoice else None,
        "invoice_ids": payall.invoice_ids(payment),
        "provider": payment.provider,
        "provider_ref": payment.provider_ref,
        "three_d_secure": payment.three_d_secure,
        "via": payment.via,
        "failure_code": payment.failure_code,
        "failure_message": payment.failure_message,
    }


def _payment_text(payment: Payment) -> str:
    label = payment.method_label or payment.provider
    if payment.provider == "offline":
        return f"Payment received ({label})"
    if payment.purpose == payall.PAY_ALL:
        return f"Card payment — {label} (all unpaid invoices)"
    if payment.purpose != "invoice":
        return f"Card payment — {label} ({payment.purpose})"
    return f"Card payment — {label}"


def _fail(
    app,
    payment_id: int,
    code: str,
    message: str,
    status: str = "failed",
    result: ChargeResult | None = None,
) -> Payment:
    with locked_transaction():
        payment = lock_rows(Payment.select().where(Payment.id == payment_id)).get()
        if payment.status not in OPEN_PAYMENT:
            return payment
        payment.status, payment.updated_at = status, utcnow()
        payment.failure_code, payment.failure_message = code[:60], message[:300]
        if result is not None:
            payment.three_d_secure = _three_d_secure(payment.three_d_secure, result)
        payment.save()
        record_system(
            app,
            "payment.failed",
            f"payment:{payment.id}",
            {"code": code, "amount": payment.amount, "via": payment.via},
            customer_id=payment.customer_id,
            user_id=payment.user_id,
        )
        emit(app, "payment.failed", _event_data(payment), customer_id=payment.customer_id)
        refused = _never_paid(payment, status)
        if refused and payment.method_id and not payment.detach_after:
            record_system(
                app,
                "payment_method.refused",
                f"payment_method:{payment.method_id}",
                {"payment": payment.id, "label": payment.method_label},
                customer_id=payment.customer_id,
                user_id=payment.user_id,
            )
        if payment.method_id and (payment.detach_after or refused):
            from plugins.billing import tasks as billing_tasks  # lazily: it imports this module

            app.tasks.enqueue(billing_tasks.forget_card, payment.method_id)
        app.plugins.hook.payment_failed(app=app, payment=payment)
    return payment


def _never_paid(payment: Payment, status: str) -> bool:
    """A card declined (or failing 3-D Secure) before it ever paid is not kept (BILL-2).

    A card that has paid before stays: one refusal (funds, a limit) does not make it bad.
    Cancelling (the customer gave up) says nothing about the card.
    """
    return (
        status == "failed"
        and not Payment.select()
        .where((Payment.method == payment.method_id) & (Payment.status == "succeeded"))
        .exists()
    )


def complete(app, payment: Payment) -> Attempt:
    """After 3-D Secure in the browser: ask the provider and record the outcome."""
    if payment.status not in OPEN_PAYMENT or not payment.provider_ref:
        return Attempt(payment)
    provider = provider_for(app, payment.provider)
    result = _provider_call(provider.retrieve, app, payment.provider_ref)
    return Attempt(record_result(app, payment.id, result), result.client_secret)


def reconcile(app, payment: Payment, *, abandon: bool = False, now=None) -> Payment:
    """Settle a payment whose outcome we did not record: ask the provider, record the truth once.

    ``abandon`` cancels one still waiting for 3-D Secure (the customer started
    again). A payment never confirmed at the provider moved no money: once it
    is old enough not to be in another process's hands, it is cancelled.
    """
    now = now or utcnow()
    payment = Payment.get_by_id(payment.id)
    if payment.status not in OPEN_PAYMENT:
        return payment
    age = now - payment.updated_at
    provider = app.providers.get(payment.provider)
    if provider is None:
        return payment
    if not payment.provider_ref:
        if age > IN_FLIGHT:  # the provider never created it: nothing was charged
            return _fail(
                app,
                payment.id,
                "not_started",
                N_("The payment was not started."),
                status="canceled",
            )
        return payment
    try:
        result = provider.retrieve(app, payment.provider_ref)
        waiting = result.status in (NOT_CONFIRMED, REQUIRES_ACTION)
        if waiting and (
            abandon or age > (ABANDONED if result.status == REQUIRES_ACTION else IN_FLIGHT)
        ):
            result = provider.cancel(app, payment.provider_ref)
    except PaymentError as exc:
        log.warning("payment %s: cannot reconcile yet (%s)", payment.id, exc.code)
        return payment
    if result.status == NOT_CONFIRMED:
        return payment
    return record_result(app, payment.id, result)


def reconcile_open(app, now=None) -> int:
    """Reconcile every payment left open for longer than a request could take; returns how many."""
    now = now or utcnow()
    stale = (
        Payment.select()
        .where(Payment.status.in_(OPEN_PAYMENT) & (Payment.updated_at < now - IN_FLIGHT))
        .order_by(Payment.id)
        .limit(500)
    )
    done = 0
    # Read them all first: on SQLite (WAL) a read still open on this connection would make
    # each record's write transaction fail with "database is locked" once another writer commits.
    for payment in list(stale):
        if reconcile(app, payment, now=now).status not in OPEN_PAYMENT:
            done += 1
    return done


def apply_event(app, provider_id: str, event) -> Payment | None:
    """A verified webhook said something about a charge: record it (once, as ever)."""
    if not event.payment_ref:
        return None
    payment = Payment.get_or_none(
        (Payment.provider == provider_id) & (Payment.provider_ref == event.payment_ref)
    )
    if payment is None:
        return None
    if event.status in (SUCCEEDED, FAILED, CANCELED, REQUIRES_ACTION, PROCESSING):
        return record_result(
            app,
            payment.id,
            ChargeResult(
                status=event.status,
                ref=event.payment_ref,
                code=event.data.get("code", ""),
                message=event.data.get("message", ""),
            ),
        )
    return payment


# -- paying for something bought at once: a top-up, an add-on ---------------------------------


def new_payment(
    customer_id: int,
    amount: int,
    currency: str,
    method: PaymentMethod,
    *,
    purpose: str,
    via: str = "portal",
    user_id: int | None = None,
    off_session: bool = False,
) -> Payment:
    """A pending payment for ``purpose`` (not an invoice), to ``charge()`` once committed.

    Create it inside the transaction that records what it pays for. The outcome
    reaches the purpose's plugin through ``payment_succeeded`` / ``payment_failed``,
    inside the transaction that records it, exactly as for invoices.
    """
    return Payment.create(
        customer=customer_id,
        purpose=purpose,
        amount=amount,
        currency=currency.upper(),
        provider=method.provider,
        method=method.id,
        method_label=method.label,
        attempt_key=f"pay-{uuid.uuid4().hex}",
        via=via,
        user_id=user_id,
        off_session=off_session,
        detach_after=method.single_use,
    )


def charge(app, payment: Payment) -> Attempt:
    """Charge a committed ``new_payment`` through the invoice flow's steps (idempotent at the
    provider, 3-D Secure, reconciliation); a decline is a failed ``Attempt``."""
    return _charge(app, payment, PaymentMethod.get_by_id(payment.method_id))


SAVED_CARDS_IMPERSONATION = N_(
    "Staff cannot pay with the customer's saved cards while impersonating. Pay with a new "
    "card the customer gives you, or ask the customer to pay."
)


def saved_cards_refusal(app, ctx) -> Problem | None:
    """IMP-6: the 403 for staff impersonating a customer, who may not charge the customer's
    saved cards unless the operator allows it (``security.impersonation_saved_card_payments``)."""
    p = ctx.principal
    if (
        p is not None
        and p.impersonated
        and not app.settings.security.impersonation_saved_card_payments
    ):
        return Problem(
            403, IMPERSONATION_TITLE, SAVED_CARDS_IMPERSONATION, type="impersonation-forbidden"
        )
    return None


@overload
def saved_card(app: Any, ctx: Any, method_id: None) -> PaymentMethod | None: ...
@overload
def saved_card(app: Any, ctx: Any, method_id: int | str) -> PaymentMethod: ...
def saved_card(app, ctx, method_id):
    """The saved card of the customer's to charge: ``method_id``, or with None the default card
    (None when there is none). Another's card is a 404; every charge of a saved card is chosen
    here, so the impersonation rule (``saved_cards_refusal``) holds for every way to pay."""
    problem = saved_cards_refusal(app, ctx)
    if problem is not None:
        raise problem
    if method_id is None:
        return cards_of(ctx.require_customer()).where(PaymentMethod.is_default).first()
    return get_owned(PaymentMethod, method_id, ctx)


def chosen_card(app, ctx, data: dict) -> PaymentMethod:
    """The card a ``PayForm`` names: a new one from the provider's widget (kept only when
    ``save_card`` is ticked) or one of the customer's saved cards (another's is a 404)."""
    customer_id = ctx.require_customer()
    if data["method"] == "new":
        return save_card(
            app,
            ctx,
            customer_id,
            data["setup_ref"],
            data["token"],
            single_use=not data["save_card"],
        )
    return saved_card(app, ctx, data["method"])


def split_tax(price: int, rate: int) -> tuple[int, int]:
    """(net, tax) of a price that includes tax at ``rate`` basis points; they add up to it."""
    tax = (price * rate + (10000 + rate) // 2) // (10000 + rate)
    return price - tax, tax


def record_inclusive_charge(
    app,
    customer_id: int,
    *,
    description: str,
    price: int,
    currency: str,
    service_id: int | None = None,
    reference: str | None = None,
    occurred_at=None,
) -> Transaction:
    """A charge whose ``price`` includes tax (catalogue prices do): net and tax add up to it."""
    from plugins.billing.invoicing import record_transaction

    rate = app.settings.plugin("billing").tax_rate
    net, tax = split_tax(price, rate)
    tx = record_transaction(
        app,
        customer_id,
        kind="charge",
        description=description,
        amount=net,
        currency=currency,
        tax_rate=rate,
        occurred_at=occurred_at,
        service_id=service_id,
        reference=reference,
    )
    if tx.tax != tax and tx.invoice_id is None:  # the 1p rounding of the net amount's tax
        tx.tax = tax
        tx.save(only=[Transaction.tax])
    return tx


def invoice_purchase(
    app, payment: Payment, description: str, service_id: int | None = None
) -> Invoice:
    """A succeeded purchase payment becomes a paid receipt: its charge on an invoice of its own.

    Call inside ``payment_succeeded``. The charge (tax included) and the payment's
    transaction both name the receipt, so nothing of it reaches a later invoice.
    Once per payment: a second call returns the same receipt.
    """
    from plugins.billing.invoicing import issue_invoice

    current = lock_rows(Payment.select().where(Payment.id == payment.id)).get()
    if current.invoice_id:
        return Invoice.get_by_id(current.invoice_id)
    now = utcnow()
    tx = record_inclusive_charge(
        app,
        current.customer_id,
        description=description,
        price=current.amount,
        currency=current.currency,
        service_id=service_id,
        reference=f"purchase:{current.id}",
        occurred_at=now,
    )
    invoice = issue_invoice(
        app,
        current.customer_id,
        currency=current.currency,
        transaction_ids=[tx.id],
        due_days=0,
        issued_at=now,
        notify=False,
        notes="Paid online at purchase.",
    )
    invoice = lock_rows(Invoice.select().where(Invoice.id == invoice.id)).get()
    apply_payment(invoice, current.amount, now)
    Payment.update(invoice=invoice.id).where(Payment.id == current.id).execute()
    (
        Transaction.update(invoice=invoice.id)
        .where((Transaction.payment == current.id) & (Transaction.kind == "payment"))
        .execute()
    )
    payment.invoice_id = invoice.id
    return invoice


def reverse_purchase(app, payment: Payment, description: str) -> Transaction | None:
    """Cancel the charge of a purchase whose payment was refunded in full (ADD-3): a credit
    that mirrors it (net and tax), on the same receipt, so the account owes nothing for
    what was not delivered and no later invoice carries it. Once per payment."""
    current = Payment.get_by_id(payment.id)
    charge = Transaction.get_or_none(Transaction.reference == f"purchase:{current.id}")
    if charge is None or current.refunded_amount < current.amount:
        return None
    with locked_transaction():
        reference = f"reversal:{current.id}"
        found = Transaction.get_or_none(Transaction.reference == reference)
        if found is not None:
            return found
        tx = Transaction.create(
            customer=current.customer_id,
            kind="credit",
            description=description,
            amount=-charge.amount,
            tax_rate=charge.tax_rate,
            tax=-charge.tax,
            currency=charge.currency,
            invoice=charge.invoice_id,
            service=charge.service_id,
            payment=current.id,
            reference=reference,
        )
        record_system(
            app,
            "transaction.reversed",
            f"transaction:{charge.id}",
            {"credit": tx.id, "amount": -charge.total},
            customer_id=current.customer_id,
        )
    return tx


# -- staff: money received another way, refunds ---------------------------------------------


def record_offline_payment(
    app, invoice_id: int, amount: int, reference: str, method: str, staff_id: int | None = None
) -> Payment:
    """Staff record money that arrived outside the portal (a bank transfer, a cheque)."""
    with locked_transaction():
        invoice = lock_rows(Invoice.select().where(Invoice.id == invoice_id)).get()
        if amount > invoice.amount_due:
            raise Problem(
                422,
                N_("More than the invoice owes"),
                errors={"amount": [N_("At most %(amount)s is due.", amount=invoice.amount_due)]},
            )
        payment = Payment.create(
            customer=invoice.customer_id,
            invoice=invoice.id,
            amount=amount,
            currency=invoice.currency,
            provider="offline",
            method_label=method,
            attempt_key=f"offline-{uuid.uuid4().hex}",
            via="staff",
            reference=reference,
        )
    return _succeed(app, payment.id, ChargeResult(status=SUCCEEDED, ref=reference))


def refund(app, payment: Payment, amount: int, staff_id: int | None = None) -> Payment:
    """Give money back to the card (staff only: LIM-1). A credit transaction records it."""
    if payment.status != "succeeded" or payment.provider == "offline":
        raise Problem(
            422,
            N_("Only a succeeded card payment can be refunded here"),
            errors={"payment": [N_("Not a succeeded card payment.")]},
        )
    if amount > payment.amount - payment.refunded_amount:
        raise Problem(
            422,
            N_("More than the payment can give back"),
            errors={
                "amount": [
                    N_(
                        "At most %(amount)s is left to refund.",
                        amount=payment.amount - payment.refunded_amount,
                    )
                ]
            },
        )
    provider = provider_for(app, payment.provider)
    key = f"refund-{payment.id}-{payment.refunded_amount}-{amount}"
    result = _provider_call(provider.refund, app, payment.provider_ref, amount, key)
    if result.status == "failed":
        raise Problem(402, N_("The provider refused the refund"), type="refund-failed")
    with locked_transaction():
        current = lock_rows(Payment.select().where(Payment.id == payment.id)).get()
        reference = f"refund:{result.ref}"
        if Transaction.select().where(Transaction.reference == reference).exists():
            return current
        current.refunded_amount += amount
        current.save(only=[Payment.refunded_amount])
        Transaction.create(
            customer=current.customer_id,
            kind="refund",
            description=f"Refund to {current.method_label}",
            amount=amount,
            currency=current.currency,
            invoice=current.invoice_id,
            payment=current.id,
            reference=reference,
        )
        record_system(
            app,
            "payment.refunded",
            f"payment:{current.id}",
            {"amount": amount, "refund": result.ref},
            customer_id=current.customer_id,
            staff_id=staff_id,
        )
    return current
