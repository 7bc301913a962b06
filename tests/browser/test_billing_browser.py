"""Billing in a real browser: paying invoices with a new card through Stripe Elements (localstripe's
stripe.js), 3-D Secure, a guest payment link, and the invoice list on a phone.

The live demo portal runs with Stripe as its provider, pointed at localstripe on loopback.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlparse

import pytest

from portal_checks import sign_in, subject_of, wait_for_mail
from stripe_fixtures import PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET

pytestmark = pytest.mark.browser
VISA, NEEDS_3DS = "4242424242424242", "4000002500003155"


@pytest.fixture(scope="module")
def live_server_env(localstripe_server) -> dict:
    return {
        "PORTICO_BILLING_PROVIDER": "stripe",
        "PORTICO_STRIPE_SECRET_KEY": SECRET_KEY,
        "PORTICO_STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
        "PORTICO_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PORTICO_STRIPE_API_BASE": localstripe_server.url,
        "PORTICO_STRIPE_JS_URL": localstripe_server.js_url,
        "PORTICO_STRIPE_MAX_NETWORK_RETRIES": "0",
    }


def open_unpaid_invoice(page, live_server) -> str:
    """Billing → the newest invoice still to pay → Pay now; returns the invoice number."""
    page.locator("nav.sections a[data-section=billing]:visible").click()  # a tab on phones too
    row = page.locator("tr[data-invoice]", has=page.get_by_role("link", name="Pay now")).first
    number = row.get_attribute("data-invoice")
    row.get_by_role("link", name="Pay now").click()
    page.wait_for_url(re.compile(r".*/billing/invoices/\d+/pay$"))
    return number


def fill_card(page, number: str) -> None:
    """localstripe's card Element: plain inputs with placeholders (two-digit year)."""
    element = page.locator("#card-element")
    element.get_by_placeholder("number").fill(number)
    element.get_by_placeholder("exp_month").fill("12")
    element.get_by_placeholder("exp_year").fill("34")
    element.get_by_placeholder("cvc").fill("123")
    element.get_by_placeholder("postal_code").fill("SW1A1")


@pytest.mark.spec("BILL-2", "BILL-5")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_pay_an_invoice_with_a_new_card_through_stripe_elements(
    live_server, page, viewport, localstripe_server, console_errors
):
    posted = []
    page.on(
        "request",
        lambda r: posted.append((r.url, r.post_data or "")) if r.method == "POST" else None,
    )
    sign_in(page, live_server, "alice@example.com")
    page.goto(live_server.url + "/billing/payment-methods")
    cards_before = page.locator(".saved-card").count()
    number = open_unpaid_invoice(page, live_server)
    amount = page.locator("[data-amount-due]").inner_text()
    page.get_by_label("A new card").check()
    fill_card(page, VISA)
    page.locator("[data-pay-button]").click()
    page.wait_for_url(re.compile(r".*/billing/invoices/\d+\?done=paid$"))
    assert "Payment received" in page.locator(".flash").inner_text()
    assert page.locator("h1 [data-status]").get_attribute("data-status") == "paid"

    # The card number went to Stripe (localstripe) only, never to the portal.
    to_portal = [data for url, data in posted if url.startswith(live_server.url)]
    to_stripe = [data for url, data in posted if url.startswith(localstripe_server.url)]
    assert any(VISA in d for d in to_stripe)
    assert to_portal and not any(VISA in d or "4242" in d for d in to_portal)
    subject = subject_of(wait_for_mail(live_server, "Payment received", "alice@example.com"))
    assert amount.replace("\xa0", " ") in subject.replace("\xa0", " ")
    # The card was kept (the box was ticked) and is listed with its brand and last four.
    page.goto(live_server.url + "/billing/payment-methods")
    assert page.locator(".saved-card").count() == cards_before + 1
    assert page.locator(".saved-card", has_text="Expires 12/2034").count() == 1
    assert number and not console_errors, console_errors


@pytest.mark.spec("BILL-2")
def test_three_d_secure_is_finished_in_the_browser(live_server, page, console_errors):
    sign_in(page, live_server, "bob@example.com")
    open_unpaid_invoice(page, live_server)
    page.get_by_label("A new card").check()
    fill_card(page, NEEDS_3DS)
    page.locator("[data-pay-button]").click()
    # localstripe's stripe.js asks the cardholder twice: when saving the card, and when paying.
    page.get_by_role("button", name="Complete authentication").click()
    page.wait_for_url(re.compile(r".*/billing/invoices/\d+/pay$"))
    page.get_by_role("button", name="Complete authentication").click()
    page.wait_for_url(re.compile(r".*/billing/invoices/\d+\?done=paid$"))
    assert page.locator("h1 [data-status]").get_attribute("data-status") == "paid"
    assert not console_errors, console_errors


@pytest.mark.spec("BILL-6")
def test_a_guest_link_pays_without_signing_in_and_leaks_no_token(live_server, new_page, page):
    sign_in(page, live_server, "bob@example.com")
    open_unpaid_invoice(page, live_server)
    invoice_url = page.url.removesuffix("/pay")
    page.goto(invoice_url)
    page.get_by_role("button", name="Create a payment link").click()
    link = page.locator("[data-new-link]").input_value()
    token = link.rsplit("/", 1)[1]
    assert "/pay/" in link and len(token) > 30

    guest = new_page()  # a stranger's browser: no session
    referers = []
    guest.on("request", lambda r: referers.append(r.headers.get("referer", "")))
    guest.goto(live_server.url + urlparse(link).path)  # the link names the configured base URL
    assert guest.url == live_server.url + "/pay"  # the token has left the address bar
    assert guest.locator('input[name="method"][type="radio"]').count() == 0  # no saved cards
    fill_card(guest, VISA)
    guest.locator("[data-pay-button]").click()
    guest.wait_for_url(re.compile(r".*/pay\?done=guest-paid$"))
    assert guest.locator("[data-guest-paid]").count() == 1
    assert not any(token in r for r in referers)
    page.goto(invoice_url)
    assert page.locator("h1 [data-status]").get_attribute("data-status") == "paid"
    log = live_server.log.read_text(errors="replace")
    assert token not in log


@pytest.mark.spec("BILL-1", "BILL-7", "MOB-1")
@pytest.mark.parametrize("viewport", ["phone", "desktop"], indirect=True)
def test_invoice_list_downloads_and_archive(live_server, page, viewport):
    sign_in(page, live_server, "alice@example.com")
    page.goto(live_server.url + "/billing")
    rows = page.locator("tr[data-invoice]")
    assert rows.count() == 12
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    with page.expect_download() as pdf:
        rows.first.get_by_role("link", name="PDF").click()
    assert pdf.value.suggested_filename.endswith(".pdf")
    rows.nth(0).locator('input[type="checkbox"]').check()
    rows.nth(1).locator('input[type="checkbox"]').check()
    with page.expect_download() as archive:
        page.get_by_role("button", name="Download selected (zip)").click()
    assert archive.value.suggested_filename.endswith(".zip")
    status, _, body = live_server.get("/api/v1/sections")
    assert any(s["id"] == "billing" for s in json.loads(body)["items"])
