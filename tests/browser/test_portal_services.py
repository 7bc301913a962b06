"""Dashboard, services and billing pages in Chromium at phone and desktop size (DASH-1, SVC-1..4,
BILL-1, BILL-4, BILL-5, MOB-1). Usage is in test_usage_browser.py, paying in
test_billing_browser.py, top-ups in test_topup_browser.py.

The live portal lets customers cancel where the product allows it (``services.allow_cancel``).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal_checks import WORKER_DEADLINE_MS, api_get, check_page, signed_in, wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_server_env() -> dict:
    return {"PORTICO_SERVICES_ALLOW_CANCEL": "true"}


def service_named(live_server, email: str, prefix: str) -> dict:
    items = api_get(live_server, email, "/api/v1/services")["items"]
    return next(s for s in items if s["name"].startswith(prefix))


@pytest.mark.spec("DASH-1", "NOT-2", "MOB-1")
@pytest.mark.parametrize("viewport", ["phone", "desktop"], indirect=True)
def test_dashboard_cards_from_every_plugin_and_dismissible_alerts(
    live_server, new_page, viewport, requests_seen
):
    page = signed_in(new_page, live_server, "alice@example.com", viewport)
    page.goto(live_server.url + "/")
    expected = api_get(live_server, "alice@example.com", "/api/v1/dashboard")
    shown = page.locator("[data-card]")
    assert [shown.nth(i).get_attribute("data-card") for i in range(shown.count())] == [
        c["id"] for c in expected["cards"]
    ]
    for card_id in ("services", "balances", "billing"):
        expect(page.locator(f'[data-card="{card_id}"] h2')).to_be_visible()
    expect(page.locator('[data-card="billing"] [data-unpaid-total]')).to_have_text("£74.40")
    check_page(page, live_server, requests_seen)

    # On a phone the balances of each service sit side by side, one swipe apart.
    balances = page.locator('[data-card="balances"] .swipe')
    if viewport == "phone":
        assert balances.evaluate("el => el.scrollWidth > el.clientWidth")
        assert balances.evaluate("el => getComputedStyle(el).scrollSnapType").startswith("x")
    else:
        assert balances.evaluate("el => el.scrollWidth <= el.clientWidth")

    alert = page.locator(".alert", has_text="TV - 1 High Street ends in")
    if alert.count():  # the other viewport's run may have dismissed it already
        expect(alert).to_have_attribute("role", "status")
        if not alert.is_visible():  # a phone folds all but the first under "N more notices"
            page.locator(".alerts-more summary").click()
        alert.get_by_role("button", name=re.compile("^Dismiss")).click()
        page.wait_for_url(live_server.url + "/")
        expect(page.locator(".alert", has_text="TV - 1 High Street ends in")).to_have_count(0)
        page.reload()
        expect(page.locator(".alert", has_text="TV - 1 High Street ends in")).to_have_count(0)
    page.locator('[data-card="services"]').get_by_role("link", name="All services").click()
    page.wait_for_url(live_server.url + "/services")


@pytest.mark.spec("SVC-1", "SVC-2", "MOB-1")
@pytest.mark.parametrize("viewport", ["phone", "desktop"], indirect=True)
def test_service_cards_swipe_on_a_phone_and_lead_to_the_details(
    live_server, new_page, viewport, requests_seen
):
    page = signed_in(new_page, live_server, "bob@example.com", viewport)
    page.goto(live_server.url + "/services")
    lists = page.locator(".service-list")
    cards = page.locator("article.service-card")
    assert cards.count() == 4
    lights = {
        cards.nth(i).locator("[data-indicator]").get_attribute("data-indicator")
        for i in range(cards.count())
    }
    assert lights == {"active", "expiring", "suspended", "expired"}  # SVC-2's four colours
    first = lists.first
    if viewport == "phone":
        width = page.viewport_size["width"]
        box = cards.first.bounding_box()
        assert box["width"] < width * 0.9  # the next card peeks in from the right
        second = first.locator("article.service-card").nth(1)
        assert second.bounding_box()["x"] > width * 0.8
        first.hover()
        page.mouse.wheel(box["width"] * 0.6, 0)  # a sideways swipe, as a trackpad sends it
        wait_until(
            first,
            "el => Math.abs(el.children[1].getBoundingClientRect().left - "
            "el.getBoundingClientRect().left) < 40",
        )
    else:
        assert first.evaluate("el => el.scrollWidth <= el.clientWidth")
    check_page(page, live_server, requests_seen)

    card = cards.filter(has_text="Mobile - +44 7700 900456")
    card.get_by_role("link", name="View details").click()
    page.wait_for_url(re.compile(r".*/services/\d+$"))
    expect(page.locator("h1")).to_have_text("Mobile - +44 7700 900456")
    expect(page.get_by_role("region", name="Details")).to_contain_text("Business Mobile 10GB")
    check_page(page, live_server, requests_seen)


@pytest.mark.spec("SVC-3")
@pytest.mark.parametrize("viewport", ["phone", "desktop"], indirect=True)
def test_modify_page_offers_what_the_product_allows(live_server, new_page, viewport, requests_seen):
    mobile = service_named(live_server, "alice@example.com", "Mobile")
    page = signed_in(new_page, live_server, "alice@example.com", viewport)
    page.goto(live_server.url + f"/services/{mobile['id']}")
    page.get_by_role("link", name="Modify").click()
    page.wait_for_url(re.compile(r".*/services/\d+/modify$"))
    expect(page.locator("h1")).to_be_visible()
    check_page(page, live_server, requests_seen)

    # Pick a compatible plan: its cost shows before anything changes (not confirmed here,
    # so both viewports meet the same plan).
    page.get_by_label(re.compile("Mobile 50GB")).check()
    page.get_by_role("button", name="See the cost").click()
    page.wait_for_url(re.compile(r".*/services/\d+/plan\?plan=mobile-50gb$"))
    options = api_get(
        live_server, "alice@example.com", f"/api/v1/services/{mobile['id']}/plan-options"
    )
    [quote] = [o for o in options["items"] if o["plan"] == "mobile-50gb"]
    charge = quote["charge_now"]["amount"]
    assert quote["kind"] == "upgrade" and charge > 0
    expect(page.locator("[data-charge]")).to_have_text(f"£{charge // 100}.{charge % 100:02d}")
    expect(page.get_by_role("button", name="Confirm the change")).to_be_visible()
    check_page(page, live_server, requests_seen)
    unchanged = service_named(live_server, "alice@example.com", "Mobile")
    assert unchanged["product"] == mobile["product"]


@pytest.mark.spec("SVC-4", "LIM-1")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_cancel_where_allowed_and_send_to_support_where_not(
    live_server, new_page, viewport, requests_seen
):
    page = signed_in(new_page, live_server, "alice@example.com", viewport)
    broadband = service_named(live_server, "alice@example.com", "Broadband")
    page.goto(live_server.url + f"/services/{broadband['id']}")
    cancel = page.get_by_role("region", name="Cancel this service")
    expect(cancel).to_contain_text("cannot be cancelled online")
    assert cancel.locator('a[href^="tel:"]').count() == 1

    prepaid = service_named(live_server, "alice@example.com", "Prepaid")
    page.goto(live_server.url + f"/services/{prepaid['id']}")
    page.get_by_role("link", name="Cancel service").click()
    page.wait_for_url(re.compile(r".*/services/\d+/cancel$"))
    page.get_by_role("button", name="Cancel service").click()  # without ticking the box
    expect(page.locator("#confirm-error")).to_be_visible()
    expect(page.get_by_label(re.compile("will be cancelled now"))).to_have_attribute(
        "aria-invalid", "true"
    )
    check_page(page, live_server, requests_seen)
    page.get_by_label("Why are you leaving? (optional)").fill("Moving abroad")
    page.get_by_label(re.compile("will be cancelled now")).check()
    page.get_by_role("button", name="Cancel service").click()
    page.wait_for_url(re.compile(r".*/services/\d+(\?.*)?$"))
    expect(page.locator("[data-indicator]").first).to_have_attribute("data-indicator", "cancelled")
    check_page(page, live_server, requests_seen)


@pytest.mark.spec("BILL-5", "MOB-1")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_add_a_card_make_it_the_default_and_delete_it(
    live_server, new_page, viewport, requests_seen
):
    page = signed_in(new_page, live_server, "bob@example.com", viewport)
    page.goto(live_server.url + "/billing/payment-methods")
    before = page.locator(".saved-card").count()
    number = page.get_by_label("Card number")
    expect(number).to_have_attribute("inputmode", "numeric")
    number.fill("1234 5678 9012 3456")  # not a test card: refused in the browser
    page.get_by_label("Expiry month").fill("11")
    page.get_by_label("Expiry year").fill("2031")
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_role("alert")).to_contain_text("test card numbers")
    check_page(page, live_server, requests_seen)

    number.fill("5555 5555 5555 4444")
    page.get_by_role("button", name="Save card").click()
    new = page.locator(".saved-card", has_text="Expires 11/2031")
    expect(new).to_have_count(1)
    expect(new).to_contain_text("4444")
    assert page.locator(".saved-card").count() == before + 1
    if new.get_by_role("button", name="Make default").count():
        new.get_by_role("button", name="Make default").click()
    expect(new.locator(".badge")).to_have_text("Default")
    expect(page.locator(".saved-card .badge", has_text="Default")).to_have_count(1)
    check_page(page, live_server, requests_seen)
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    new.get_by_role("button", name=re.compile("^Delete")).click()
    assert asked and asked[0].startswith("Delete ") and "4444" in asked[0]
    expect(new).to_have_count(1)  # "Cancel" on the question keeps the card
    page.once("dialog", lambda d: d.accept())
    new.get_by_role("button", name=re.compile("^Delete")).click()
    expect(new).to_have_count(0)
    assert page.locator(".saved-card").count() == before


@pytest.mark.spec("BILL-1", "BILL-3", "BILL-4")
@pytest.mark.parametrize("viewport", ["phone", "desktop"], indirect=True)
def test_invoice_details_and_transactions(live_server, new_page, viewport, requests_seen):
    page = signed_in(new_page, live_server, "alice@example.com", viewport)
    page.goto(live_server.url + "/billing")
    paid = page.locator("tr[data-invoice]", has=page.locator('[data-status="paid"]')).first
    number = paid.get_attribute("data-invoice")
    paid.get_by_role("link", name=number).click()
    page.wait_for_url(re.compile(r".*/billing/invoices/\d+$"))
    expect(page.locator("h1")).to_contain_text(number)
    expect(page.get_by_role("table", name="What this invoice is for")).to_be_visible()
    expect(page.get_by_role("link", name="Download PDF")).to_be_visible()
    check_page(page, live_server, requests_seen)

    page.goto(live_server.url + "/billing")
    page.get_by_role("navigation", name="Billing").get_by_role("link", name="Transactions").click()
    page.wait_for_url(live_server.url + "/billing/transactions")
    expect(page.locator("tr[data-transaction]").first).to_be_visible()
    check_page(page, live_server, requests_seen)


@pytest.mark.spec("ADD-1", "ADD-2", "SVC-3", "MOB-1")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_add_an_add_on_and_watch_it_become_active(live_server, new_page, viewport, requests_seen):
    page = signed_in(new_page, live_server, "alice@example.com", viewport)
    page.goto(live_server.url + "/services")
    card = page.locator("article.service-card", has_text="Mobile - +44 7700 900123")
    card.get_by_role("link", name="Add-ons").click()
    page.wait_for_url(re.compile(r".*/services/\d+/addons$"))
    check_page(page, live_server, requests_seen)
    offer = page.locator("li[data-product]", has_text="5G Max speed")
    offer.get_by_role("link", name="Add 5G Max speed to this service").click()
    expect(page.locator("[data-review]")).to_contain_text("5G Max speed")
    expect(page.locator("[data-review-recurring]")).to_have_text("£3.00")
    check_page(page, live_server, requests_seen)
    page.locator("[data-confirm-button]").click()
    page.wait_for_url(re.compile(r".*/services/\d+/addons/\d+(\?.*)?$"))
    # Provisioned in the background; the page refreshes itself until it is done.
    expect(page.locator("[data-addon-page]")).to_have_attribute(
        "data-addon-page", "active", timeout=WORKER_DEADLINE_MS
    )
    check_page(page, live_server, requests_seen)
    page.get_by_role("link", name="Add-ons").last.click()
    expect(page.locator("li[data-addon]", has_text="5G Max speed")).to_be_visible()
