"""Add-ons in a real browser at phone size (ADD-1, ADD-2, MOB-1): Services → a service → Add-ons →
browse → Add to service → review (one-off + recurring) → confirm → provisioned in the background,
the status page following it; removal.

The live demo portal uses the sandbox provider and runs its worker in-process, so provisioning
happens for real while the page waits.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal_checks import WORKER_DEADLINE_MS, assert_fits_the_screen, sign_in

pytestmark = pytest.mark.browser
BROADBAND = "Broadband - 1 High Street"


def open_addons(page, service_name: str) -> None:
    page.get_by_role("link", name="Services", exact=True).first.click()
    card = page.locator("article.service-card", has_text=service_name)
    card.get_by_role("link", name="Add-ons").click()
    page.wait_for_url(re.compile(r".*/services/\d+/addons$"))


@pytest.mark.spec("ADD-1", "ADD-2", "MOB-1")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_add_a_router_with_a_one_off_price_on_a_phone(live_server, page, viewport, console_errors):
    sign_in(page, live_server, "alice@example.com")
    open_addons(page, BROADBAND)
    mine = page.locator("li.addon[data-addon]", has_text="Static IP address")
    expect(mine.locator("[data-addon-status]")).to_have_text("Active")  # from the demo
    router = page.locator('li.addon[data-product="broadband-router-wifi6"]')
    expect(router).to_contain_text("£25.00 now + £3.00 a month")
    assert_fits_the_screen(page)
    router.get_by_role("link", name=re.compile(r"^Add .+ to this service$")).click()

    expect(page.locator("[data-review-one-off]")).to_have_text("£25.00")
    expect(page.locator("[data-review-recurring]")).to_have_text("£3.00")
    expect(page.locator("[data-review]")).to_contain_text("No, contact support")
    expect(page.get_by_label(re.compile("Visa •••• 4242"))).to_be_checked()
    assert_fits_the_screen(page)
    page.get_by_role("button", name="Pay £25.00 and add").click()

    page.wait_for_url(re.compile(r".*/services/\d+/addons/\d+$"))
    # Pending, then (the worker sets it up; the page refreshes itself) active.
    expect(page.locator("h1 [data-addon-status]")).to_have_text(
        "Active", timeout=WORKER_DEADLINE_MS
    )
    expect(page.locator("[data-addon-page]")).to_contain_text("Next charge")
    expect(page.locator("[data-addon-page]")).to_contain_text("contact support")
    assert_fits_the_screen(page)
    page.get_by_role("link", name="Add-ons", exact=True).first.click()
    expect(
        page.locator("li.addon[data-addon]", has_text="Wi-Fi 6 router rental").locator(
            "[data-addon-status]"
        )
    ).to_have_text("Active")
    assert not console_errors, console_errors


@pytest.mark.spec("ADD-2", "MOB-1")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_add_then_remove_a_monthly_add_on_on_a_phone(live_server, page, viewport):
    sign_in(page, live_server, "alice@example.com")
    open_addons(page, BROADBAND)
    page.locator('li.addon[data-product="broadband-boost-900"]').get_by_role(
        "link", name=re.compile(r"^Add .+ to this service$")
    ).click()
    expect(page.locator("[data-review-one-off]")).to_have_text("£0.00")
    page.get_by_role("button", name="Confirm and add").click()
    page.wait_for_url(re.compile(r".*/services/\d+/addons/\d+$"))
    expect(page.locator("h1 [data-addon-status]")).to_have_text(
        "Active", timeout=WORKER_DEADLINE_MS
    )

    page.get_by_role("link", name="Remove").click()
    page.get_by_role("button", name="Remove").click()
    expect(page.locator(".flash")).to_contain_text("removing")
    expect(page.locator("h1 [data-addon-status]")).to_have_text(
        "Removed", timeout=WORKER_DEADLINE_MS
    )
    page.goto(live_server.url + "/")
    assert "Speed boost to 900 Mb/s" not in page.locator("main").inner_text()
