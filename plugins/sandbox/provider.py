"""The sandbox payment provider: test cards that succeed, decline, or ask for 3-D Secure.

It is the embedded default so the demo takes payments with no keys and no
network. It behaves like a real provider where it matters: one charge per
idempotency key, the reference handed over before money "moves", 3-D Secure
finished by the cardholder, refunds, detaching cards.

Card numbers never reach the server: the sandbox widget turns a *test* card
number into a token in the browser (``sbx_<kind>_<brand>_<last4>_<mm>_<yyyy>``)
and refuses any other number. It is a demo provider: it takes no real money.
"""

from __future__ import annotations

import re
import secrets
import peewee

from engine.db import database, utcnow
from engine.i18n import N_
from engine.payments import (
    CANCELED,
    FAILED,
    NOT_CONFIRMED,
    REQUIRES_ACTION,
    SUCCEEDED,
    ChargeRequest,
    ChargeResult,
    PaymentError,
    PaymentProvider,
    RefundResult,
    SavedCard,
    SetupSession,
)
from engine.security import same
from plugins.sandbox.models import (
    SandboxCard,
    SandboxCharge,
    SandboxCustomer,
    SandboxRefund,
    SandboxSetup,
)

#: The test cards, as the widget knows them (number → kind, brand). Stripe's numbers, so
#: people who know them feel at home.
TEST_CARDS = {
    "4242424242424242": ("ok", "visa"),
    "5555555555554444": ("ok", "mastercard"),
    "4000000000000002": ("decline", "visa"),
    "4000000000000341": ("decline", "visa"),
    "4000000000009995": ("funds", "visa"),
    "4000002500003155": ("auth", "visa"),
}
TOKEN_RE = re.compile(r"^sbx_(ok|decline|funds|auth)_(visa|mastercard)_(\d{4})_(\d{2})_(\d{4})\Z")
OUTCOMES = {
    "decline": ("card_declined", N_("Your card was declined.")),
    "funds": ("insufficient_funds", N_("Your card has insufficient funds.")),
}
_STATUS = {
    "requires_confirmation": NOT_CONFIRMED,
    "requires_action": REQUIRES_ACTION,
    "succeeded": SUCCEEDED,
    "failed": FAILED,
    "canceled": CANCELED,
}


def _ref(prefix: str) -> str:
    return f"{prefix}_sbx_{secrets.token_hex(8)}"


def _three_d_secure(charge: SandboxCharge) -> str:
    """What the sandbox bank says of 3-D Secure: only its "auth" test card asks for it."""
    if charge.status == "requires_confirmation":
        return ""
    kind = SandboxCard.select(SandboxCard.kind).where(SandboxCard.ref == charge.card_ref).scalar()
    if kind != "auth":
        return "not_required"
    if charge.status == "succeeded":
        return "authenticated"
    if charge.failure_code == "authentication_failed":
        return "failed"
    return "required"  # waiting, given up, or off-session (nobody there to authenticate)


def _result(charge: SandboxCharge) -> ChargeResult:
    return ChargeResult(
        status=_STATUS[charge.status],
        ref=charge.ref,
        amount=charge.amount,
        currency=charge.currency,
        client_secret=charge.client_secret if charge.status == "requires_action" else "",
        code=charge.failure_code,
        message=charge.failure_message,
        three_d_secure=_three_d_secure(charge),
    )


class SandboxProvider(PaymentProvider):
    id = "sandbox"
    name = "Sandbox (demo payments, no real money)"
    widget_template = "sandbox/widget.html"

    def ensure_customer(self, app, customer, email: str = "") -> str:
        return SandboxCustomer.create(ref=_ref("cus"), email=email).ref

    # -- cards --------------------------------------------------------------------

    def start_setup(self, app, customer_ref: str) -> SetupSession:
        setup = SandboxSetup.create(ref=_ref("seti"), customer_ref=customer_ref)
        return SetupSession(ref=setup.ref, widget=self.page_data(app))

    def finish_setup(self, app, customer_ref: str, setup_ref: str, token: str = "") -> SavedCard:
        setup = SandboxSetup.get_or_none(
            (SandboxSetup.ref == setup_ref) & (SandboxSetup.customer_ref == customer_ref)
        )
        if setup is None:
            raise PaymentError(
                N_("This card form has expired. Please enter the card again."), "setup_invalid"
            )
        if setup.status == "succeeded":  # the same form sent twice: the same card
            return self._saved(SandboxCard.get(SandboxCard.ref == setup.card_ref))
        match = TOKEN_RE.match(token or "")
        if not match:
            raise PaymentError(
                N_("Enter one of the sandbox test card numbers, e.g. 4242 4242 4242 4242."),
                "invalid_card",
            )
        kind, brand, last4, month, year = match.groups()
        month, year = int(month), int(year)
        now = utcnow()
        if not 1 <= month <= 12:
            raise PaymentError(N_("The expiry month is not valid."), "invalid_expiry_month")
        if (year, month) < (now.year, now.month):
            raise PaymentError(N_("Your card has expired."), "expired_card")
        with database.atomic():
            card = SandboxCard.create(
                ref=_ref("pm"),
                customer_ref=customer_ref,
                kind=kind,
                brand=brand,
                last4=last4,
                exp_month=month,
                exp_year=year,
            )
            setup.status, setup.card_ref = "succeeded", card.ref
            setup.save()
        return self._saved(card)

    @staticmethod
    def _saved(card: SandboxCard) -> SavedCard:
        return SavedCard(
            ref=card.ref,
            brand=card.brand,
            last4=card.last4,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
        )

    def detach(self, app, customer_ref: str, method_ref: str) -> None:
        (
            SandboxCard.update(detached=True)
            .where((SandboxCard.ref == method_ref) & (SandboxCard.customer_ref == customer_ref))
            .execute()
        )

    # -- charges --------------------------------------------------------------------

    def charge(self, app, request: ChargeRequest, on_created=None) -> ChargeResult:
        existing = SandboxCharge.get_or_none(
            SandboxCharge.idempotency_key == request.idempotency_key
        )
        if existing is not None:  # a retry of the same attempt: the first result, no new charge
            if on_created:
                on_created(existing.ref)
            return _result(existing)
        card = SandboxCard.get_or_none(
            (SandboxCard.ref == request.method_ref)
            & (SandboxCard.customer_ref == request.customer_ref)
            & ~SandboxCard.detached
        )
        if card is None:
            raise PaymentError(
                N_("This card is no longer available. Choose another card."), "card_missing"
            )
        try:
            with database.atomic():
                charge = SandboxCharge.create(
                    ref=_ref("pi"),
                    idempotency_key=request.idempotency_key,
                    customer_ref=request.customer_ref,
                    card_ref=card.ref,
                    amount=request.amount,
                    currency=request.currency,
                    client_secret=secrets.token_urlsafe(24),
                    off_session=request.off_session,
                    metadata=request.metadata,
                )
        except peewee.IntegrityError:  # the same key at the same moment: one charge
            return self.charge(app, request, on_created)
        if on_created:
            on_created(charge.ref)
        return self._confirm(charge, card)

    def _confirm(self, charge: SandboxCharge, card: SandboxCard) -> ChargeResult:
        now = utcnow()
        expired = (card.exp_year, card.exp_month) < (now.year, now.month)
        if expired:
            self._set(charge, "failed", "expired_card", N_("Your card has expired."))
        elif card.kind in OUTCOMES:
            self._set(charge, "failed", *OUTCOMES[card.kind])
        elif card.kind == "auth" and charge.off_session:
            self._set(
                charge,
                "failed",
                "authentication_required",
                N_("Your bank asks you to confirm this payment; pay it in the portal."),
            )
        elif card.kind == "auth":
            self._set(charge, "requires_action")
        else:
            self._set(charge, "succeeded")
        return _result(charge)

    @staticmethod
    def _set(charge: SandboxCharge, status: str, code: str = "", message: str = "") -> None:
        charge.status, charge.failure_code, charge.failure_message = status, code, message
        (
            SandboxCharge.update(status=status, failure_code=code, failure_message=message)
            .where(SandboxCharge.id == charge.id)
            .execute()
        )

    def retrieve(self, app, ref: str) -> ChargeResult:
        charge = SandboxCharge.get_or_none(SandboxCharge.ref == ref)
        if charge is None:
            raise PaymentError(N_("Unknown payment."), "not_found")
        return _result(charge)

    def cancel(self, app, ref: str) -> ChargeResult:
        with database.atomic():
            charge = SandboxCharge.get(SandboxCharge.ref == ref)
            if charge.status in ("requires_confirmation", "requires_action"):
                self._set(charge, "canceled", "canceled", N_("The payment was cancelled."))
        return _result(charge)

    def authenticate(self, ref: str, client_secret: str, success: bool) -> ChargeResult:
        """The cardholder's answer to 3-D Secure (the sandbox's challenge page or its API)."""
        with database.atomic():
            charge = SandboxCharge.get_or_none(SandboxCharge.ref == ref)
            if charge is None or not same(charge.client_secret, client_secret):
                raise PaymentError(N_("Unknown payment."), "not_found")
            if charge.status == "requires_action":
                if success:
                    self._set(charge, "succeeded")
                else:
                    self._set(
                        charge,
                        "failed",
                        "authentication_failed",
                        N_("Your bank could not confirm the payment. No money was taken."),
                    )
        return _result(charge)

    def refund(self, app, ref: str, amount: int, idempotency_key: str) -> RefundResult:
        found = SandboxRefund.get_or_none(SandboxRefund.idempotency_key == idempotency_key)
        if found is not None:
            return RefundResult(ref=found.ref, status="succeeded", amount=found.amount)
        with database.atomic():
            charge = SandboxCharge.get_or_none(SandboxCharge.ref == ref)
            if charge is None or charge.status != "succeeded":
                raise PaymentError(
                    N_("Only a succeeded payment can be refunded."), "not_refundable"
                )
            if amount > charge.amount - charge.refunded:
                raise PaymentError(N_("More than the payment can give back."), "amount_too_large")
            refund = SandboxRefund.create(
                ref=_ref("re"), idempotency_key=idempotency_key, charge_ref=ref, amount=amount
            )
            (
                SandboxCharge.update(refunded=SandboxCharge.refunded + amount)
                .where(SandboxCharge.id == charge.id)
                .execute()
            )
        return RefundResult(ref=refund.ref, status="succeeded", amount=amount)


def token_for(number: str, month: int, year: int) -> str:
    """What the widget makes of a test card (used by the demo data and tests, like the browser)."""
    kind, brand = TEST_CARDS[number]
    return f"sbx_{kind}_{brand}_{number[-4:]}_{month:02d}_{year:04d}"
