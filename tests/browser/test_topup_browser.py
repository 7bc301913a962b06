"""Top-ups in a real browser at phone size (TOP-1, TOP-3, MOB-1): Services → a service → Top up →
product → review (price, expiry, bucket order) → pay → balance updated; a custom amount with a new
card that asks for 3-D Secure; auto top-up.

The live demo portal uses the sandbox provider (its default), with its in-process worker.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal_checks import assert_fits_the_screen, sign_in, wait_for_mail

pytestmark = pytest.mark.browser
PREPAID = "Prepaid - +44 7700 900555"


def open_topup(page, service_name: str) -> None:
    page.get_by_role("link", name="Services", exact=True).first.click()
    card = page.locator("article.service-card", has_text=service_name)
    card.get_by_role("link", name="Top up").click()
    page.wait_for_url(re.compile(r".*/services/\d+/topup$"))


@pytest.mark.spec("TOP-1", "TOP-2", "MOB-1")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_buy_a_data_topup_with_a_saved_card_on_a_phone(live_server, page, viewport, console_errors):
    sign_in(page, live_server, "alice@example.com")
    open_topup(page, PREPAID)
    assert_fits_the_screen(page)
    for name in ("1 GB data", "50 GB data", "100 minutes", "500 texts", "£100 credit"):
        expect(page.locator(".topup-option", has_text=name).first).to_be_visible()
    page.locator('.topup-option[data-product="prepaid-data-5gb"]').click()
    page.get_by_role("button", name="Review").click()
    page.wait_for_url(re.compile(r".*/topup/review\?.*"))

    expect(page.locator("[data-review-price]")).to_have_text("£5.00")
    expect(page.locator("[data-review-adds]")).to_contain_text("5 GB")
    expect(page.locator("[data-review-expires]")).not_to_have_text("Never")
    expect(page.locator("[data-new-bucket]")).to_contain_text("5 GB data")
    assert_fits_the_screen(page)
    expect(page.get_by_label(re.compile("Visa •••• 4242"))).to_be_checked()  # the saved card
    page.get_by_role("button", name="Pay £5.00").click()

    page.wait_for_url(re.compile(r".*/services/\d+/topup/purchases/\d+$"))
    expect(page.locator("[data-purchase-status]")).to_have_text("Added")
    expect(page.locator("[data-topup-done]")).to_contain_text("5 GB")
    expect(page.locator("[data-balance-now]")).to_be_visible()
    assert_fits_the_screen(page)
    wait_for_mail(live_server, "Top-up added: 5 GB data")
    page.get_by_role("link", name="View usage").click()
    expect(page.locator('section[data-balance="data"]')).to_contain_text("5 GB data")
    assert not console_errors, console_errors


@pytest.mark.spec("TOP-1", "BILL-2", "MOB-1")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_a_custom_amount_of_credit_with_a_new_card_and_3ds(
    live_server, page, viewport, console_errors
):
    sign_in(page, live_server, "alice@example.com")
    open_topup(page, PREPAID)
    page.locator('.topup-option[data-product="prepaid-credit-custom"]').click()
    page.get_by_label(re.compile("Your amount")).fill("300")
    page.get_by_role("button", name="Review").click()
    expect(page.locator("#amount-error")).to_contain_text("£250.00")  # beyond the bounds
    page.locator('.topup-option[data-product="prepaid-credit-custom"]').click()
    page.get_by_label(re.compile("Your amount")).fill("7.50")
    page.get_by_role("button", name="Review").click()
    expect(page.locator("[data-review-price]")).to_have_text("£7.50")

    page.get_by_label("A new card").check()
    page.get_by_label("Card number").fill("4000 0025 0000 3155")
    page.get_by_label("Expiry month").fill("12")
    page.get_by_label("Expiry year").fill("2034")
    page.get_by_label("Save this card for next time").uncheck()
    page.get_by_role("button", name="Pay £7.50").click()
    page.get_by_role("button", name="Complete authentication").click()
    page.wait_for_url(re.compile(r".*/services/\d+/topup/purchases/\d+$"))
    expect(page.locator("[data-purchase-status]")).to_have_text("Added")
    expect(page.locator("[data-topup-done]")).to_contain_text("£7.50")
    # The only console message is the refused amount's 422, which is the page's answer.
    assert_fits_the_screen(page)
    assert [e for e in console_errors if "422" not in e] == [], console_errors


@pytest.mark.spec("TOP-3", "MOB-1")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_auto_topup_settings_on_a_phone(live_server, page, viewport):
    sign_in(page, live_server, "alice@example.com")
    page.locator(".sections-more summary").click()  # on a phone Top-up is under More
    page.get_by_role("link", name="Top-up", exact=True).first.click()
    card = page.locator("[data-topup-service]", has_text=PREPAID)
    expect(card).to_contain_text("On: £10.00 when below £3.00")  # the demo's setting
    card.get_by_role("link", name="Auto top-up").click()
    page.get_by_label(re.compile("When credit falls below")).fill("4.00")
    page.get_by_label(re.compile("Add this much credit")).fill("20.00")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text("saved")
    expect(page.get_by_label(re.compile("When credit falls below"))).to_have_value("4.00")
    assert_fits_the_screen(page)
