"""The payment provider interface: what a provider plugin implements (Stripe, the sandbox, ...).

A provider plugin returns instances from the ``payment_providers`` hook; the
billing plugin is the only caller. A provider talks to its payment service and
nothing else: it never writes Portico's tables, never sends notifications and
never decides whether an invoice is paid. Card numbers never pass through it
(BILL-5): cards are entered in the provider's own page element and reach
Portico only as references.

The life of a card payment::

    ref = provider.ensure_customer(app, customer)              # once per customer
    setup = provider.start_setup(app, ref)                     # the browser shows setup.widget
    card = provider.finish_setup(app, ref, setup_ref, token)   # a SavedCard to store
    result = provider.charge(app, ChargeRequest(...), on_created=remember)
    # result.status: succeeded | requires_action | failed | processing
    result = provider.retrieve(app, result.ref)                # after 3-D Secure, or to reconcile

Money moves at most once per ``ChargeRequest.idempotency_key``: a provider
must create the payment object first, hand its reference to ``on_created``
(the caller commits it) and only then move money. If the process dies after
that, ``retrieve(ref)`` tells the truth and the payment is reconciled instead
of charged again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

#: Charge outcomes. ``requires_action``: the customer must authenticate (3-D
#: Secure) in the browser, then the caller asks ``retrieve``. ``processing``: the
#: provider has not decided yet (a webhook or a later ``retrieve`` will tell).
SUCCEEDED, REQUIRES_ACTION, FAILED, PROCESSING, CANCELED = (
    "succeeded",
    "requires_action",
    "failed",
    "processing",
    "canceled",
)
#: Created at the provider but not yet confirmed: no money has moved.
NOT_CONFIRMED = "not_confirmed"

#: What a provider may say of 3-D Secure (``ChargeResult.three_d_secure``): the cardholder
#: authenticated, the bank took an attempt as enough, no challenge was needed (or the
#: payment was exempt), the card does not support it, authentication failed, or the bank
#: asks for it and the cardholder has not finished yet. "" when the provider does not say.
THREE_D_SECURE = (
    "authenticated",
    "attempted",
    "not_required",
    "not_supported",
    "failed",
    "required",
)


class PaymentError(Exception):
    """A provider refused or could not do something; ``message`` is safe to show a customer.

    ``code`` is a stable machine code (``card_declined``, ``authentication_required``,
    ``provider_unavailable``, ...). ``retryable`` says whether trying again later may work.
    """

    def __init__(self, message: str, code: str = "payment_error", *, retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable


class WebhookError(Exception):
    """A webhook that must be refused: bad or missing signature, too old, malformed."""


@dataclass(frozen=True)
class SetupSession:
    """A started card setup (Stripe: a SetupIntent). ``widget`` feeds the provider's template."""

    ref: str
    client_secret: str = ""
    widget: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SavedCard:
    """What Portico stores about a saved card: a reference and what a customer recognises."""

    ref: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class ChargeRequest:
    """One charge of a saved card.

    ``idempotency_key`` is unique per attempt and reused on retries of that
    attempt; ``off_session`` is true when the customer is not present (auto
    top-up): the provider then fails with ``authentication_required`` rather
    than asking for 3-D Secure. ``metadata`` is stored at the provider for
    reconciliation (never put card data or secrets in it).
    """

    customer_ref: str
    method_ref: str
    amount: int
    currency: str
    idempotency_key: str
    off_session: bool = False
    description: str = ""
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ChargeResult:
    """Where a charge stands at the provider. ``client_secret`` lets the browser finish 3-D Secure.

    ``three_d_secure``: one of ``THREE_D_SECURE`` when the provider tells the outcome of
    strong customer authentication, else "" (billing then infers what it saw: asked for,
    then succeeded or failed).
    """

    status: str
    ref: str
    amount: int = 0
    currency: str = ""
    client_secret: str = ""
    code: str = ""
    message: str = ""
    three_d_secure: str = ""


@dataclass(frozen=True)
class RefundResult:
    ref: str
    status: str  # succeeded, pending, failed
    amount: int


@dataclass(frozen=True)
class WebhookEvent:
    """A verified provider event, reduced to what billing needs.

    ``id`` is the provider's event id (processed once); ``payment_ref`` names
    the charge it is about, if any, and ``status`` its new state.
    """

    id: str
    type: str
    payment_ref: str = ""
    status: str = ""
    data: dict = field(default_factory=dict)


class PaymentProvider:
    """Base class of payment providers. Subclass it and return an instance from ``payment_providers``.

    ``id`` is unique across plugins (a start-up error names both plugins
    otherwise); ``name`` is shown to customers; ``widget_template`` is the
    template billing includes inside its own forms. It receives ``mode``:
    ``"setup"`` (card entry for ``setup``, a ``SetupSession``; it must post a
    ``setup_ref`` and, if it needs one, a ``token`` field with the form) or
    ``"authenticate"`` (3-D Secure for ``payment`` with ``client_secret``, then
    go to ``return_url``), plus ``provider``, ``widget`` (``page_data()``) and
    ``csrf_token``.
    """

    id: str = ""
    name: str = ""
    widget_template: str = ""

    def page_data(self, app) -> dict:
        """Values ``widget_template`` needs on every page (a publishable key, a script URL)."""
        return {}

    def ping(self, app) -> None:
        """Raise ``PaymentError`` (an operator-facing message) unless the provider's service
        answers and accepts our keys (``portico check --connect``). Must not move money.
        The default: nothing to ask (an offline provider like the sandbox)."""

    def content_security(self, app) -> list[str]:
        """Origins the widget loads scripts, frames or API calls from (added to the page's CSP)."""
        return []

    def ensure_customer(self, app, customer, email: str = "") -> str:
        """Create the provider's customer record for a Portico ``Customer``; return its reference.

        Called once per customer and provider; the caller stores the reference.
        """
        raise NotImplementedError

    def start_setup(self, app, customer_ref: str) -> SetupSession:
        """Begin saving a card for ``customer_ref``. Must not move money."""
        raise NotImplementedError

    def finish_setup(self, app, customer_ref: str, setup_ref: str, token: str = "") -> SavedCard:
        """Check with the provider that setup ``setup_ref`` of ``customer_ref`` succeeded.

        ``token`` is what the browser widget produced, if the provider needs it.
        Raises ``PaymentError`` when the setup failed, belongs to someone else,
        or still needs authentication. Must not move money.
        """
        raise NotImplementedError

    def detach(self, app, customer_ref: str, method_ref: str) -> None:
        """Forget a saved card at the provider (a card already gone is not an error)."""
        raise NotImplementedError

    def charge(
        self, app, request: ChargeRequest, on_created: Callable[[str], Any] | None = None
    ) -> ChargeResult:
        """Charge a saved card once.

        Create the payment object, call ``on_created(ref)`` (the caller commits
        the reference), then confirm it. A decline is a ``ChargeResult`` with
        status ``failed`` and a ``message`` for the customer, not an exception;
        ``PaymentError`` is for the provider being unreachable or refusing the
        request itself.
        """
        raise NotImplementedError

    def retrieve(self, app, ref: str) -> ChargeResult:
        """Ask the provider where charge ``ref`` stands now (after 3-D Secure, or to reconcile)."""
        raise NotImplementedError

    def cancel(self, app, ref: str) -> ChargeResult:
        """Abandon a charge that has not moved money (waiting for 3-D Secure or confirmation)."""
        raise NotImplementedError

    def refund(self, app, ref: str, amount: int, idempotency_key: str) -> RefundResult:
        """Give back ``amount`` of charge ``ref``, once per ``idempotency_key``."""
        raise NotImplementedError

    def parse_webhook(self, app, payload: bytes, headers: dict[str, str]) -> WebhookEvent:
        """Verify a webhook's signature and age and return the event; raise ``WebhookError`` if not."""
        raise WebhookError(f"provider '{self.id}' does not accept webhooks")


__all__ = [
    "PaymentProvider",
    "PaymentError",
    "WebhookError",
    "SetupSession",
    "SavedCard",
    "ChargeRequest",
    "ChargeResult",
    "RefundResult",
    "WebhookEvent",
    "SUCCEEDED",
    "REQUIRES_ACTION",
    "FAILED",
    "PROCESSING",
    "CANCELED",
    "NOT_CONFIRMED",
    "THREE_D_SECURE",
]
