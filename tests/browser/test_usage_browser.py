"""The usage page at phone size in Chromium: balances, low data, the chart, its table, a range of
days and its CSV, eSIM (USE-2, USE-8, MOB-1, MOB-2)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal_checks import sign_in

pytestmark = pytest.mark.browser


@pytest.mark.spec("USE-1", "USE-2", "USE-4", "USE-5", "USE-8", "MOB-1", "NOT-2")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_usage_page_on_a_phone(live_server, page, viewport, console_errors):
    sign_in(page, live_server, "bob@example.com")
    # The demo's busiest line is low on data: the dashboard says so.
    expect(page.get_by_role("main")).to_contain_text("Low data on Mobile - +44 7700 900456")

    page.get_by_role("link", name="Services", exact=True).first.click()
    card = page.locator("article.service-card", has_text="Mobile - +44 7700 900456")
    expect(card.locator("[data-indicator]")).to_be_visible()
    card.get_by_role("link", name="View usage").click()
    page.wait_for_url(re.compile(r".*/services/\d+/usage$"))

    data = page.locator('section[data-balance="data"]')
    expect(data.locator(".badge")).to_have_text("Low")
    expect(data.locator("progress")).to_be_visible()
    expect(data).to_contain_text("Used this period")
    expect(data).to_contain_text("runs out around")
    voice = page.locator('section[data-balance="voice"]')
    expect(voice.get_by_role("table", name=re.compile("by destination"))).to_contain_text(
        "Same network"
    )
    expect(voice).to_contain_text("International")
    expect(page.locator('section[data-balance="sms"]')).to_contain_text("Picture messages")

    chart = page.get_by_role("img", name=re.compile("Data used per day"))
    expect(chart).to_be_visible()
    # USE-8: the chart takes the screen's width, not half of it.
    figure = page.locator("section.history").bounding_box()
    assert chart.bounding_box()["width"] >= 0.8 * figure["width"]
    page.get_by_role("link", name="30 days").click()
    page.wait_for_url(re.compile(r".*days=30"))
    assert (
        page.get_by_role("img", name=re.compile("Data used per day")).locator("rect").count() == 30
    )
    page.get_by_role("link", name="90 days").click()
    page.wait_for_url(re.compile(r".*days=90"))
    assert (
        page.get_by_role("img", name=re.compile("Data used per day")).locator("rect").count() == 90
    )
    page.get_by_role("link", name="Calls", exact=True).click()
    expect(page.get_by_role("img", name=re.compile("Call time per day"))).to_be_visible()

    page.get_by_text("Show as a table").click()
    rows = page.locator("details.chart-table tbody tr")
    expect(rows.first).to_be_visible()
    assert rows.count() == 90

    # USE-8: any range of days, its events, and the CSV of them.
    page.get_by_label("From", exact=True).fill("2026-01-01")
    page.get_by_label("To", exact=True).fill("2026-01-10")
    page.get_by_role("button", name="Show", exact=True).click()
    page.wait_for_url(re.compile(r".*from=2026-01-01.*to=2026-01-10"))
    expect(page.get_by_role("img", name=re.compile("per day"))).to_be_visible()
    assert page.get_by_role("img", name=re.compile("per day")).locator("rect").count() == 10
    expect(page.locator("a[data-csv]")).to_have_attribute(
        "href", re.compile(r"usage\.csv\?from=2026-01-01&to=2026-01-10")
    )

    # Phone layout: nothing wider than the screen, touch targets at least 44 px tall.
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport_width(page)
    for tab in page.locator(".tabs a").all():
        assert tab.bounding_box()["height"] >= 44
    assert console_errors == []

    # A reversed range: the page again (status 422), the message beside the field.
    page.get_by_label("From", exact=True).fill("2026-01-11")
    page.get_by_role("button", name="Show", exact=True).click()
    expect(page.locator("#range-from-error")).to_contain_text("after the end date")


@pytest.mark.spec("USE-2")
def test_usage_chart_reads_without_javascript(live_server, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, live_server, "alice@example.com")
        page.goto(live_server.url + "/usage")
        page.get_by_role("link", name="Mobile - +44 7700 900123").click()
        chart = page.get_by_role("img", name=re.compile("Data used per day"))
        expect(chart).to_be_visible()
        assert "Total" in chart.locator("desc").text_content()
        # The bucket list shows the promotion, then the top-up, then the plan (USE-3).
        names = page.locator(
            'section[data-balance="data"] table.buckets tbody th'
        ).all_inner_texts()
        assert names == ["Bonus 2 GB", "5 GB top-up", "20 GB data"]
    finally:
        context.close()


@pytest.mark.spec("MOB-2")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_esim_qr_code_on_a_phone(live_server, page, viewport):
    sign_in(page, live_server, "alice@example.com")
    page.goto(live_server.url + "/services")
    page.locator("article.service-card", has_text="Mobile - +44 7700 900123").get_by_role(
        "link", name="View details"
    ).click()
    page.get_by_text("Show the eSIM activation QR code").click()
    qr = page.get_by_role("img", name=re.compile("eSIM activation QR code"))
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.naturalWidth") > 100  # the SVG data URI decoded and drew
    expect(page.get_by_role("main")).to_contain_text("smdp.portico.example")


def viewport_width(page) -> int:
    return page.viewport_size["width"]
