"""The top-up portal pages (TOP-1, TOP-3, SVC-3, DASH-1): Services → a service → Top up →
product and amount → review → pay → balance updated; auto top-up; the dashboard card."""

from __future__ import annotations

import uuid

import pytest

from billing_helpers import customer, sandbox_card
from engine.testing import PrincipalHeader, run_tasks
from plugins.sandbox.models import SandboxCharge
from plugins.sandbox.provider import token_for
from plugins.topups.models import AutoTopup, TopupPurchase
from plugins.usage.models import Bucket
from topups_helpers import form_value, page_client, service_of, topup_catalogue
from usage_helpers import GB


@pytest.fixture
def app(make_app):
    return make_app(plugins=[("test-auth", PrincipalHeader())])


@pytest.fixture
def world(app):
    c, user = customer("alice")
    return {
        "customer": c,
        "service": service_of(c, "prepaid"),
        "card": sandbox_card(app, c.id),
        "products": topup_catalogue(app),
        "browser": page_client(app, user),
    }


def review(world, code, amount=""):
    product = world["products"][code]
    return world["browser"].get(
        f"/services/{world['service'].id}/topup/review",
        params={"product_id": product.id, "amount": amount},
    )


@pytest.mark.spec("TOP-1", "SVC-3", "ACC-3")
def test_from_the_services_page_to_the_catalogue(app, world):
    browser, service = world["browser"], world["service"]
    listing = browser.get("/services").text
    assert f'href="/services/{service.id}/topup" data-action="topup"' in listing
    section = browser.get("/topup")
    assert section.status_code == 200 and f"/services/{service.id}/topup" in section.text
    assert 'data-section="topup"' in section.text
    page = browser.get(f"/services/{service.id}/topup")
    assert page.status_code == 200
    for code in (
        "prepaid-data-1gb",
        "prepaid-data-50gb",
        "prepaid-voice-100",
        "prepaid-sms-500",
        "prepaid-credit-100",
        "prepaid-credit-custom",
    ):
        assert f'data-product="{code}"' in page.text
    assert 'name="amount"' in page.text and "£1.00 to £250.00" in page.text


@pytest.mark.spec("TOP-1")
def test_bad_choices_are_refused_beside_the_field(app, world):
    r = review(world, "prepaid-credit-custom", "5000")
    assert r.status_code == 422 and 'id="amount-error"' in r.text and "£250.00" in r.text
    r = review(world, "prepaid-credit-custom", "twelve")
    assert r.status_code == 422 and "Enter an amount such as 12.50." in r.text
    r = world["browser"].get(f"/services/{world['service'].id}/topup/review")
    assert r.status_code == 422 and "Choose a top-up." in r.text
    assert TopupPurchase.select().count() == 0


@pytest.mark.spec("TOP-1", "USE-3")
def test_review_then_pay_with_a_saved_card_and_a_double_click(app, world):
    Bucket.create(
        service=world["service"].id,
        type="data",
        initial=GB,
        remaining=GB,
        unit="bytes",
        weight=30,
        name="Plan data",
    )
    page = review(world, "prepaid-data-5gb")
    assert page.status_code == 200
    assert "£5.00" in page.text and "5 GB" in page.text and "data-new-bucket" in page.text
    assert page.text.index("5 GB data") < page.text.index("Plan data")  # weight 20 before 30
    assert world["card"].label in page.text
    form = {
        "idempotency_key": form_value(page.text, "idempotency_key"),
        "product_id": str(world["products"]["prepaid-data-5gb"].id),
        "method": str(world["card"].id),
    }
    path = f"/services/{world['service'].id}/topup/buy"
    first = world["browser"].post(path, form=form)
    second = world["browser"].post(path, form=form)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert SandboxCharge.select().count() == 1 and TopupPurchase.select().count() == 1
    done = world["browser"].get(first.headers["location"])
    assert "data-topup-done" in done.text and "6 GB" in done.text  # the balance now
    assert "A confirmation email is on its way." in done.text


@pytest.mark.spec("TOP-1", "BILL-2")
def test_a_custom_amount_with_a_new_card_that_asks_for_3ds(app, world):
    page = review(world, "prepaid-credit-custom", "12.50")
    assert page.status_code == 200 and "Pay £12.50" in page.text
    challenge = world["browser"].post(
        f"/services/{world['service'].id}/topup/buy",
        form={
            "idempotency_key": uuid.uuid4().hex,
            "product_id": form_value(page.text, "product_id"),
            "amount": form_value(page.text, "amount"),
            "method": "new",
            "setup_ref": form_value(page.text, "setup_ref"),
            "token": token_for("4000002500003155", 12, 2035),
        },
    )
    assert challenge.status_code == 200 and "data-sandbox-challenge" in challenge.text
    sandbox = challenge.text.split("data-sandbox-challenge", 1)[1]
    action = sandbox.split('form method="post" action="', 1)[1].split('"', 1)[0]
    back = form_value(challenge.text, "return_to")
    done = world["browser"].post(
        action,
        form={
            "client_secret": form_value(challenge.text, "client_secret"),
            "return_to": back,
            "result": "complete",
        },
    )
    assert done.status_code == 303
    result = world["browser"].get(back)
    assert "data-topup-done" in result.text and "£12.50" in result.text
    [credit] = Bucket.select().where(Bucket.type == "monetary")
    assert credit.initial == 1250


@pytest.mark.spec("TOP-1")
def test_a_decline_shows_beside_the_form_and_a_missing_csrf_token_is_refused(app, world):
    card = sandbox_card(app, world["customer"].id, number="4000000000009995", default=False)
    page = review(world, "prepaid-data-1gb")
    form = {
        "idempotency_key": uuid.uuid4().hex,
        "product_id": str(world["products"]["prepaid-data-1gb"].id),
        "method": str(card.id),
    }
    path = f"/services/{world['service'].id}/topup/buy"
    r = world["browser"].post(path, form=form)
    assert r.status_code == 402 and "Your card has insufficient funds." in r.text
    assert "data-pay-form" in r.text and Bucket.select().count() == 0
    assert (
        world["browser"]
        .post(path, form={**form, "idempotency_key": uuid.uuid4().hex}, csrf=False)
        .status_code
        == 403
    )
    missing = world["browser"].post(
        path, form={"idempotency_key": uuid.uuid4().hex, "product_id": form["product_id"]}
    )
    assert missing.status_code == 422 and "Choose how to pay." in missing.text
    assert page.status_code == 200 and SandboxCharge.select().count() == 1


@pytest.mark.spec("TOP-3")
def test_the_auto_topup_page(app, world):
    path = f"/services/{world['service'].id}/auto-topup"
    page = world["browser"].get(path)
    assert page.status_code == 200 and 'name="threshold"' in page.text
    bad = world["browser"].post(
        path, form={"enabled": "true", "threshold": "abc", "amount": "10.00"}
    )
    assert bad.status_code == 422 and 'id="threshold-error"' in bad.text
    too_much = world["browser"].post(
        path, form={"enabled": "true", "threshold": "5.00", "amount": "900.00"}
    )
    assert too_much.status_code == 422 and 'id="amount-error"' in too_much.text
    assert AutoTopup.select().count() == 0
    ok = world["browser"].post(
        path, form={"enabled": "true", "threshold": "3.00", "amount": "20.00"}
    )
    assert ok.status_code == 303
    rule = AutoTopup.get()
    assert (rule.enabled, rule.threshold, rule.amount) == (True, 300, 2000)
    shown = world["browser"].get(ok.headers["location"])
    assert "Your auto top-up settings have been saved." in shown.text
    # Credit (none) is below the threshold: switching on buys at once, in the background.
    assert TopupPurchase.get().status == "pending"
    run_tasks(app)
    assert TopupPurchase.get().status == "credited"
    usage = world["browser"].get(f"/services/{world['service'].id}/usage").text
    assert "On: £20.00 when below £3.00" in usage and "£20.00" in usage
    dashboard = world["browser"].get("/").text
    assert "Auto top-up on" in dashboard and "Last top-up" in dashboard
