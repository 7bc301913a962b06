"""Stripe behind the provider interface, with the official ``stripe`` library.

- Cards are saved with SetupIntents confirmed by Stripe Elements in the
  browser (``confirmCardSetup``): card data goes to Stripe, never to us.
- A charge is a PaymentIntent created unconfirmed, its id handed to billing
  (committed), then confirmed — on-session, or ``off_session`` when the
  customer is away. Both calls carry idempotency keys. A lost answer is
  reconciled by retrieving the PaymentIntent; one never confirmed moved no money.
- 3-D Secure is finished in the browser by ``confirmCardPayment``; billing then
  retrieves the PaymentIntent.
- Webhooks are verified with the signing secret (and a 5-minute tolerance).
"""

from __future__ import annotations

import logging
from urllib.parse import urlparse

import stripe

from engine.i18n import N_
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
    RefundResult,
    SavedCard,
    SetupSession,
    WebhookError,
    WebhookEvent,
)

log = logging.getLogger("portico.stripe")

_STATUS = {
    "succeeded": SUCCEEDED,
    "requires_action": REQUIRES_ACTION,
    "requires_confirmation": NOT_CONFIRMED,
    "processing": PROCESSING,
    "requires_capture": PROCESSING,
    "canceled": CANCELED,
    "requires_payment_method": FAILED,
}
_EVENTS = {
    "payment_intent.succeeded": SUCCEEDED,
    "payment_intent.payment_failed": FAILED,
    "payment_intent.canceled": CANCELED,
    "payment_intent.requires_action": REQUIRES_ACTION,
    "payment_intent.processing": PROCESSING,
}
#: ``payment_method_details.card.three_d_secure.result`` of a charge, as Portico says it.
_THREE_D_SECURE = {
    "authenticated": "authenticated",
    "attempt_acknowledged": "attempted",
    "exempted": "not_required",
    "not_supported": "not_supported",
    "failed": "failed",
    "processing_error": "failed",
}
#: Retrieved and confirmed PaymentIntents bring their charge: it tells the 3-D Secure outcome.
_EXPAND = ["latest_charge"]
UNAVAILABLE = N_("Card payments are not available right now. Please try again in a few minutes.")


def _unwrap(error: stripe.StripeError) -> PaymentError:
    """A Stripe error as a PaymentError whose message is safe to show a customer."""
    if isinstance(error, stripe.CardError):
        return PaymentError(
            error.user_message or N_("Your card was declined."), error.code or "card_declined"
        )
    if isinstance(error, (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError)):
        return PaymentError(UNAVAILABLE, "provider_unavailable", retryable=True)
    if isinstance(error, stripe.AuthenticationError):
        log.error("Stripe refused our API key: check [stripe] secret_key")
        return PaymentError(UNAVAILABLE, "provider_misconfigured")
    log.warning("Stripe refused a request: %s", error.user_message or error.__class__.__name__)
    return PaymentError(
        error.user_message or N_("The payment provider refused the request."),
        getattr(error, "code", None) or "provider_error",
    )


def _field(obj, name: str) -> str:
    """A field of a Stripe object that may be missing (they are not dicts)."""
    return (getattr(obj, name, None) or "") if obj is not None else ""


def _origin(url: str) -> str:
    parts = urlparse(url)
    return f"{parts.scheme}://{parts.netloc}"


def three_d_secure(intent, failure_code: str = "") -> str:
    """The 3-D Secure outcome of a PaymentIntent (BILL-2): its charge's
    ``payment_method_details.card.three_d_secure`` (null: no authentication was needed), or
    what the intent says (the bank asks, or authentication failed); "" when Stripe does not
    say (the charge not expanded, or not made yet)."""
    if intent.status == "requires_action":
        return "required"
    if failure_code == "payment_intent_authentication_failure":
        return "failed"
    charge = getattr(intent, "latest_charge", None)
    details = getattr(charge, "payment_method_details", None) if charge is not None else None
    card = getattr(details, "card", None) if details is not None else None
    if card is None:  # not expanded (an id), not charged yet, or a server that does not say
        return ""
    checked = getattr(card, "three_d_secure", None)
    if checked is None:
        return "not_required"
    return _THREE_D_SECURE.get(_field(checked, "result"), "")


class StripeProvider(PaymentProvider):
    id = "stripe"
    name = "Stripe"
    widget_template = "stripe/widget.html"

    def __init__(self, settings):
        self.settings = settings
        self.client = stripe.StripeClient(
            settings.secret_key,
            base_addresses={"api": settings.api_base},
            max_network_retries=settings.max_network_retries,
        )

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except stripe.StripeError as exc:
            raise _unwrap(exc) from None

    def ping(self, app) -> None:
        """A read that needs the secret key: proves the API answers and takes the key."""
        try:
            self.client.v1.customers.list(params={"limit": 1})
        except stripe.StripeError as exc:
            message = (str(exc.user_message or exc) or type(exc).__name__).splitlines()[0]
            message = message.split(".  ")[0]  # the library adds advice after two spaces
            raise PaymentError(
                f"payment provider 'stripe' at {self.settings.api_base} "
                f"does not answer: {type(exc).__name__}: {message}",
                "provider_unavailable",
            ) from None

    # -- the browser side ----------------------------------------------------------------

    def page_data(self, app) -> dict:
        return {"publishable_key": self.settings.publishable_key, "js_url": self.settings.js_url}

    def content_security(self, app) -> list[str]:
        origins = [_origin(self.settings.js_url), _origin(self.settings.api_base)]
        if urlparse(self.settings.js_url).hostname == "js.stripe.com":
            origins += ["https://*.js.stripe.com", "https://hooks.stripe.com"]
        return origins

    # -- customers and cards -----------------------------------------------------------------

    def ensure_customer(self, app, customer, email: str = "") -> str:
        params = {"name": customer.name, "metadata": {"portico_customer": customer.number}}
        if email:
            params["email"] = email
        created = self._call(
            self.client.v1.customers.create,
            params=params,
            options={"idempotency_key": f"portico-customer-{customer.number}"},
        )
        return created.id

    def start_setup(self, app, customer_ref: str) -> SetupSession:
        seti = self._call(
            self.client.v1.setup_intents.create,
            params={
                "customer": customer_ref,
                "usage": "off_session",
                "payment_method_types": ["card"],
            },
        )
        return SetupSession(
            ref=seti.id, client_secret=seti.client_secret, widget=self.page_data(app)
        )

    def finish_setup(self, app, customer_ref: str, setup_ref: str, token: str = "") -> SavedCard:
        if not setup_ref.startswith("seti_"):
            raise PaymentError(N_("Enter your card details."), "setup_invalid")
        seti = self._call(self.client.v1.setup_intents.retrieve, setup_ref)
        if seti.customer != customer_ref:
            raise PaymentError(
                N_("This card form has expired. Please enter the card again."), "setup_invalid"
            )
        if seti.status != "succeeded" or not seti.payment_method:
            raise PaymentError(
                N_("Your bank has not confirmed the card. Please try again."), "setup_incomplete"
            )
        method_id = (
            seti.payment_method if isinstance(seti.payment_method, str) else seti.payment_method.id
        )
        method = self._call(self.client.v1.payment_methods.retrieve, method_id)
        if method.customer is None:
            # Stripe attaches the card to the SetupIntent's customer; attach it if not (yet).
            method = self._call(
                self.client.v1.payment_methods.attach, method_id, params={"customer": customer_ref}
            )
        elif method.customer != customer_ref:
            raise PaymentError(
                N_("This card form has expired. Please enter the card again."), "setup_invalid"
            )
        card = method.card
        return SavedCard(
            ref=method.id,
            brand=card.brand or "card",
            last4=card.last4,
            exp_month=int(card.exp_month),
            exp_year=int(card.exp_year),
        )

    def detach(self, app, customer_ref: str, method_ref: str) -> None:
        try:
            self.client.v1.payment_methods.detach(method_ref)
        except stripe.InvalidRequestError:
            pass  # already detached or gone: the goal is reached
        except stripe.StripeError as exc:
            raise _unwrap(exc) from None

    # -- charges ----------------------------------------------------------------------------

    def charge(self, app, request: ChargeRequest, on_created=None) -> ChargeResult:
        metadata = {**request.metadata}
        if request.description:
            metadata["description"] = request.description[:500]
        intent = self._call(
            self.client.v1.payment_intents.create,
            params={
                "amount": request.amount,
                "currency": request.currency.lower(),
                "customer": request.customer_ref,
                "payment_method": request.method_ref,
                "payment_method_types": ["card"],
                "metadata": metadata,
            },
            options={"idempotency_key": f"{request.idempotency_key}-create"},
        )
        if on_created:
            on_created(intent.id)
        params: dict = {"expand": _EXPAND}
        if request.off_session:
            params["off_session"] = True
        try:
            intent = self.client.v1.payment_intents.confirm(
                intent.id,
                params=params,
                options={"idempotency_key": f"{request.idempotency_key}-confirm"},
            )
        except stripe.CardError as exc:
            return ChargeResult(
                status=FAILED,
                ref=intent.id,
                amount=request.amount,
                currency=request.currency,
                code=exc.code or "card_declined",
                message=exc.user_message or N_("Your card was declined."),
            )
        except stripe.StripeError as exc:
            raise _unwrap(exc) from None
        result = self._result(intent)
        if request.off_session and result.status == REQUIRES_ACTION:
            # Nobody is there to authenticate: give up now, the customer pays in the portal.
            self.cancel(app, intent.id)
            return ChargeResult(
                status=FAILED,
                ref=intent.id,
                amount=request.amount,
                currency=request.currency,
                code="authentication_required",
                message=N_("Your bank asks you to confirm this payment; pay it in the portal."),
            )
        return result

    @staticmethod
    def _result(intent) -> ChargeResult:
        status = _STATUS.get(intent.status, PROCESSING)
        error = getattr(intent, "last_payment_error", None)
        code = _field(error, "code") if status == FAILED else ""
        message = _field(error, "message") if status == FAILED else ""
        return ChargeResult(
            status=status,
            ref=intent.id,
            amount=intent.amount,
            currency=(intent.currency or "").upper(),
            client_secret=intent.client_secret if status == REQUIRES_ACTION else "",
            code=code or ("card_declined" if status == FAILED else ""),
            message=message or (N_("Your card was declined.") if status == FAILED else ""),
            three_d_secure=three_d_secure(intent, code),
        )

    def retrieve(self, app, ref: str) -> ChargeResult:
        return self._result(
            self._call(self.client.v1.payment_intents.retrieve, ref, params={"expand": _EXPAND})
        )

    def cancel(self, app, ref: str) -> ChargeResult:
        try:
            return self._result(
                self.client.v1.payment_intents.cancel(ref, params={"expand": _EXPAND})
            )
        except stripe.InvalidRequestError:
            return self.retrieve(app, ref)  # it moved on (succeeded, or already cancelled)
        except stripe.StripeError as exc:
            raise _unwrap(exc) from None

    def refund(self, app, ref: str, amount: int, idempotency_key: str) -> RefundResult:
        refund = self._call(
            self.client.v1.refunds.create,
            params={"payment_intent": ref, "amount": amount},
            options={"idempotency_key": idempotency_key},
        )
        return RefundResult(
            ref=refund.id, status=refund.status or "pending", amount=int(refund.amount)
        )

    # -- webhooks ---------------------------------------------------------------------------

    def parse_webhook(self, app, payload: bytes, headers: dict[str, str]) -> WebhookEvent:
        secret = self.settings.webhook_secret
        if not secret:
            raise WebhookError("webhooks are off: set [stripe] webhook_secret")
        signature = headers.get("stripe-signature", "")
        if not signature:
            raise WebhookError("missing Stripe-Signature header")
        try:
            event = stripe.Webhook.construct_event(
                payload, signature, secret, tolerance=self.settings.webhook_tolerance
            )
        except stripe.SignatureVerificationError as exc:
            raise WebhookError(f"signature check failed: {exc.user_message or exc}") from None
        except ValueError:
            raise WebhookError("the body is not a Stripe event") from None
        obj = event.data.object
        status = _EVENTS.get(event.type, "")
        if not status or getattr(obj, "object", "") != "payment_intent":
            return WebhookEvent(id=event.id, type=event.type)
        error = getattr(obj, "last_payment_error", None)
        return WebhookEvent(
            id=event.id,
            type=event.type,
            payment_ref=obj.id,
            status=status,
            data={"code": _field(error, "code"), "message": _field(error, "message")},
        )
