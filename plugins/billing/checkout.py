"""The pay-once flow of every portal form that takes a card payment: an invoice, a top-up, an add-on.

A pay form carries a key made when it was rendered (``new_key()``). ``submit()`` checks the
posted card choice, then runs the purchase once per (customer, key) through
``engine.idempotency.once``: a double click or a reload pays once, the same key with another
order is refused, and any refusal shows the form again with its message. ``pay_with()`` is
what ``billing/_pay_with.html`` needs inside such a form; ``widget_csp()`` lets the payment
provider's widget run on the page; ``pay_answer()`` is the JSON API's answer to a payment.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Callable

import falcon
from marshmallow import Schema

from engine.errors import Problem, problem_body
from engine.forms import validate_form
from engine.idempotency import once, owner_of, request_id
from engine.middleware import CSP
from plugins.billing import payall, payments, schemas
from plugins.billing.models import Invoice


def new_key() -> str:
    """A pay form's key, made when the form is rendered (a hidden ``idempotency_key`` field)."""
    return uuid.uuid4().hex


def widget_csp(resp, app, provider) -> None:
    """Let the provider's widget load its script and reach its API on this page only."""
    origins = provider.content_security(app) if provider is not None else []
    if origins:
        resp.set_header(
            "Content-Security-Policy",
            CSP.format(extra="".join(f" {o}" for o in sorted(set(origins)))),
        )


def pay_with(
    req, resp, customer_id: int, error: str | None = None, *, guest: bool = False
) -> tuple[dict, str | None]:
    """What ``billing/_pay_with.html`` needs inside any form that takes a card payment: saved
    cards (none for a guest) and the provider's widget, allowed by the page's CSP.

    Returns (template values, error): with the provider down, saved cards still work.
    """
    app = req.context.app
    provider = setup = None
    try:
        provider, setup = payments.start_setup(app, customer_id)
    except Problem as exc:
        error = error or app.translator.gettext(exc.title)
    widget_csp(resp, app, provider)
    return {
        "cards": [] if guest else list(payments.cards_of(customer_id)),
        "provider": provider,
        "setup": setup,
        "mode": "setup",
        "guest": guest,
        "cards_refused": payments.saved_cards_refusal(app, req.context),
        "widget": provider.page_data(app) if provider else {},
    }, error


def challenge(resp, app, payment) -> tuple:
    """(provider, widget values) for a page that waits for 3-D Secure on ``payment``."""
    provider = app.providers.get(payment.provider) if payment is not None else None
    widget_csp(resp, app, provider)
    return provider, provider.page_data(app) if provider else {}


@dataclass(frozen=True)
class Paid:
    """A pay form's work, done (now or by the first of repeated posts)."""

    body: dict  # what ``work`` returned, without the client secret
    client_secret: str  # for 3-D Secure now; "" on a repeat (ask the provider again)


def submit(
    req,
    *,
    order: dict,
    work: Callable[[dict], dict],
    show_form: Callable[..., None],
    pay: bool = True,
    form: type[Schema] | None = None,
) -> Paid | None:
    """Run a pay form's POST once per its key; None when the form was shown again instead.

    ``order`` names what is bought (with the chosen card it is the request's fingerprint);
    ``work(data)`` buys it with the posted ``PayForm`` values and returns a small JSON body
    (a ``client_secret`` in it is handed back but never stored); ``show_form(error=...,
    errors=..., status=...)`` renders the form again. ``pay=False``: nothing to pay now,
    the form carries only its key. ``form``: a ``PayForm`` with more fields.
    """
    data, errors = validate_form(req, form or (schemas.PayForm if pay else schemas.KeyForm))
    if errors:
        show_form(errors=errors, status=422)
        return None
    ctx = req.context
    fingerprint = request_id(
        "POST",
        req.path,
        {**order, "method": data.get("method", ""), "setup": data.get("setup_ref", "")},
    )
    secret = {}

    def run() -> tuple[int, dict]:
        body = dict(work(data))
        secret["value"] = body.pop("client_secret", "") or ""
        return 200, body

    try:
        outcome = once(
            owner_of(ctx),
            data["idempotency_key"],
            fingerprint,
            run,
            describe_error=lambda exc: problem_body(req, exc),
        )
    except falcon.HTTPError as exc:
        if int(exc.status_code) == 404:
            raise
        show_form(error=exc.description or exc.title, status=int(exc.status_code))
        return None
    if outcome.problem:
        show_form(
            error=outcome.body.get("detail") or outcome.body.get("title"), status=outcome.status
        )
        return None
    return Paid(outcome.body, "" if outcome.replayed else secret.get("value", ""))


def pay_answer(resp, attempt: payments.Attempt) -> dict:
    """The API's answer to a payment attempt: 200 paid, 202 waiting, 402 declined.

    ``invoice`` is the invoice it pays (None for a payment of several: ``invoices`` lists
    every invoice it pays, BILL-8)."""
    payment = attempt.payment
    if payment.status in ("failed", "canceled"):
        raise Problem(
            402,
            payment.failure_message or payments.DECLINED,
            type="payment-failed",
            payment_id=payment.id,
            code=payment.failure_code or "card_declined",
        )
    next_action = None
    if payment.status == "requires_action":
        resp.status = falcon.HTTP_202
        next_action = {
            "type": "authenticate",
            "provider": payment.provider,
            "client_secret": attempt.client_secret,
            "complete_url": f"/api/v1/payments/{payment.id}/complete",
        }
    elif payment.status == "pending":
        resp.status = falcon.HTTP_202
    invoice = Invoice.get_by_id(payment.invoice_id) if payment.invoice_id else None
    ids = payall.invoice_ids(payment)
    invoices = list(Invoice.select().where(Invoice.id.in_(ids)).order_by(Invoice.id)) if ids else []
    return {
        "payment": payment,
        "invoice": invoice,
        "invoices": invoices,
        "next_action": next_action,
    }
