"""The sandbox provider on its own: test cards, idempotency, 3-D Secure, refunds, no card numbers."""

from __future__ import annotations

import pytest

from billing_helpers import customer
from engine.payments import ChargeRequest, PaymentError
from engine.testing import Client
from plugins.sandbox.models import SandboxCharge
from plugins.sandbox.provider import TEST_CARDS, token_for


@pytest.fixture
def sandbox(app):
    return app.providers["sandbox"]


@pytest.fixture
def cus(app, sandbox):
    c, _ = customer("alice")
    return sandbox.ensure_customer(app, c, "alice@example.com")


def saved(app, sandbox, cus, number, month=12, year=2040):
    setup = sandbox.start_setup(app, cus)
    return sandbox.finish_setup(app, cus, setup.ref, token_for(number, month, year))


def charge(app, sandbox, cus, card, key, amount=1000, off_session=False, seen=None):
    return sandbox.charge(
        app,
        ChargeRequest(cus, card.ref, amount, "GBP", key, off_session=off_session),
        on_created=(seen.append if seen is not None else None),
    )


def test_the_sandbox_is_the_embedded_default(app):
    assert app.settings.plugin("billing").provider == "sandbox"
    assert "sandbox" in app.providers and "stripe" not in app.providers  # no keys, no Stripe


@pytest.mark.parametrize(
    "number, status, code",
    [
        ("4242424242424242", "succeeded", ""),
        ("5555555555554444", "succeeded", ""),
        ("4000000000000341", "failed", "card_declined"),
        ("4000000000000002", "failed", "card_declined"),
        ("4000000000009995", "failed", "insufficient_funds"),
        ("4000002500003155", "requires_action", ""),
    ],
)
def test_each_test_card_behaves_as_documented(app, sandbox, cus, number, status, code):
    card = saved(app, sandbox, cus, number)
    seen = []
    result = charge(app, sandbox, cus, card, f"k-{number}", seen=seen)
    assert (result.status, result.code) == (status, code)
    assert seen == [result.ref]  # the reference comes before any money moves
    assert bool(result.client_secret) == (status == "requires_action")
    assert set(TEST_CARDS) >= {number}


def test_one_charge_per_idempotency_key(app, sandbox, cus):
    card = saved(app, sandbox, cus, "4242424242424242")
    first = charge(app, sandbox, cus, card, "same-key")
    again = charge(app, sandbox, cus, card, "same-key")
    assert first == again and SandboxCharge.select().count() == 1


def test_off_session_never_waits_for_authentication(app, sandbox, cus):
    card = saved(app, sandbox, cus, "4000002500003155")
    result = charge(app, sandbox, cus, card, "auto-1", off_session=True)
    assert result.status == "failed" and result.code == "authentication_required"


def test_three_d_secure_needs_the_client_secret(app, sandbox, cus):
    card = saved(app, sandbox, cus, "4000002500003155")
    pending = charge(app, sandbox, cus, card, "3ds-1")
    with pytest.raises(PaymentError):
        sandbox.authenticate(pending.ref, "wrong", True)
    assert sandbox.retrieve(app, pending.ref).status == "requires_action"
    assert sandbox.authenticate(pending.ref, pending.client_secret, True).status == "succeeded"
    # Answering again changes nothing.
    assert sandbox.authenticate(pending.ref, pending.client_secret, False).status == "succeeded"


def test_cancel_only_what_has_not_moved_money(app, sandbox, cus):
    waiting = charge(app, sandbox, cus, saved(app, sandbox, cus, "4000002500003155"), "c-1")
    assert sandbox.cancel(app, waiting.ref).status == "canceled"
    done = charge(app, sandbox, cus, saved(app, sandbox, cus, "4242424242424242"), "c-2")
    assert sandbox.cancel(app, done.ref).status == "succeeded"


def test_refunds_are_once_per_key_and_never_more_than_was_paid(app, sandbox, cus):
    done = charge(app, sandbox, cus, saved(app, sandbox, cus, "4242424242424242"), "r-1")
    first = sandbox.refund(app, done.ref, 600, "refund-a")
    assert sandbox.refund(app, done.ref, 600, "refund-a") == first
    with pytest.raises(PaymentError) as too_much:
        sandbox.refund(app, done.ref, 600, "refund-b")
    assert too_much.value.code == "amount_too_large"
    assert SandboxCharge.get().refunded == 600


def test_setup_accepts_only_tokens_of_test_cards(app, sandbox, cus):
    setup = sandbox.start_setup(app, cus)
    for token in ("4242424242424242", "sbx_ok_visa_4242_13_2040", "sbx_ok_amex_0005_12_2040", ""):
        with pytest.raises(PaymentError):
            sandbox.finish_setup(app, cus, setup.ref, token)
    with pytest.raises(PaymentError) as expired:
        sandbox.finish_setup(app, cus, setup.ref, token_for("4242424242424242", 1, 2001))
    assert expired.value.code == "expired_card"
    other = sandbox.ensure_customer(app, customer("bob")[0])
    with pytest.raises(PaymentError):  # someone else's setup
        sandbox.finish_setup(app, other, setup.ref, token_for("4242424242424242", 1, 2040))
    card = sandbox.finish_setup(app, cus, setup.ref, token_for("5555555555554444", 3, 2031))
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == (
        "mastercard",
        "4444",
        3,
        2031,
    )
    # The same form sent twice gives the same card.
    assert sandbox.finish_setup(app, cus, setup.ref, "anything") == card


def test_a_detached_card_cannot_be_charged(app, sandbox, cus):
    card = saved(app, sandbox, cus, "4242424242424242")
    sandbox.detach(app, cus, card.ref)
    with pytest.raises(PaymentError) as gone:
        charge(app, sandbox, cus, card, "d-1")
    assert gone.value.code == "card_missing"


def test_the_widget_never_posts_a_card_number(app):
    """The inputs for the number have no name; the script posts a token (BILL-5, in spirit)."""
    text = app.theme.env.get_template("sandbox/widget.html").render(
        mode="setup",
        setup=type("S", (), {"ref": "seti_x"})(),
        csrf_token="t",
        static_url=lambda p: "/static/" + p,
        _=lambda s, **k: s % k if k else s,
    )
    assert "data-sandbox-number" in text and 'name="number"' not in text
    script = Client(app).get("/static/sandbox/card.js")
    assert script.status_code == 200 and "token.value" in script.text
