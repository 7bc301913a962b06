"""Pay all (BILL-8) and switching between a login's customer accounts (SUP-2) in Chromium,
on the demo with the sandbox provider. Every page they pass through passes ``check_page``.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal_checks import check_page, signed_in

pytestmark = pytest.mark.browser


@pytest.mark.spec("BILL-8", "BILL-2", "MOB-1")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_bob_pays_both_unpaid_invoices_in_one_payment(
    live_server, new_page, viewport, requests_seen
):
    page = signed_in(new_page, live_server, "bob@example.com", viewport)
    page.goto(live_server.url + "/billing")
    offer = page.locator("[data-pay-all]")
    expect(offer).to_be_visible()
    offer.get_by_role("link", name=re.compile("Pay all")).click()
    page.wait_for_url(re.compile(r".*/billing/pay-all\?currency=GBP$"))
    rows = page.locator("table.pay-all-invoices tbody tr[data-invoice]")
    expect(rows).to_have_count(2)  # bob's unpaid invoice and his overdue one
    numbers = rows.evaluate_all("rows => rows.map(r => r.dataset.invoice)")
    check_page(page, live_server, requests_seen)
    page.locator("[data-pay-button]").click()
    page.wait_for_url(re.compile(r".*/billing\?done=paid-all$"))
    expect(page.locator("[data-pay-all]")).to_have_count(0)
    for number in numbers:
        row = page.locator(f'tr[data-invoice="{number}"]')
        expect(row.get_by_role("link", name="Pay now")).to_have_count(0)
    # Each invoice names the one payment, with the provider's reference.
    page.locator(f'tr[data-invoice="{numbers[0]}"]').get_by_role("link", name=numbers[0]).click()
    payment = page.locator("li[data-payment]").first
    expect(payment).to_contain_text("several invoices")
    check_page(page, live_server, requests_seen)


@pytest.mark.spec("SUP-2", "MOB-1")
@pytest.mark.parametrize("viewport", ["phone", "desktop"], indirect=True)
def test_carol_switches_between_her_two_customer_accounts(
    live_server, new_page, viewport, requests_seen
):
    page = signed_in(new_page, live_server, "carol@example.com", viewport)
    page.goto(live_server.url + "/support")
    expect(page.locator("[data-customer-number]")).to_have_text("C-100002")
    switcher = page.locator("[data-account-switch] select")
    expect(switcher.locator("option")).to_have_count(2)
    check_page(page, live_server, requests_seen)
    switcher.select_option(label="Carol's Catering · C-100003")
    page.locator("[data-account-switch]").get_by_role("button", name="Switch").click()
    page.wait_for_load_state()
    page.goto(live_server.url + "/support")
    expect(page.locator("[data-customer-number]")).to_have_text("C-100003")
    check_page(page, live_server, requests_seen)
    # And back: the bike shop's account again.
    switcher = page.locator("[data-account-switch] select")
    switcher.select_option(label="Bob's Bikes Ltd · C-100002")
    page.locator("[data-account-switch]").get_by_role("button", name="Switch").click()
    page.wait_for_load_state()
    page.goto(live_server.url + "/support")
    expect(page.locator("[data-customer-number]")).to_have_text("C-100002")
