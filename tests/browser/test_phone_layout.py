"""The portal on a phone (MOB-1): the bottom bar, the header's "More", the dashboard's notices
folded into one line, and an invoice that fits a 360 px screen; a desktop stays as it was.

Phones are 390×844 (the suite's "phone") and 360×800 (a small Android), in English and in
Chinese; every state is checked with axe-core.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from engine.i18n import Translator
from portal_checks import api_get, assert_accessible, assert_fits_the_screen, signed_in

pytestmark = pytest.mark.browser

ZH = Translator().get("zh_Hans")
TABS = ["dashboard", "services", "usage", "billing", "account"]
SMALL = {"width": 360, "height": 800}
LOCALES = {"en": "en-GB", "zh": "zh-CN"}


def phone(new_page, live_server, locale: str = "en", width: int = 390):
    page = signed_in(new_page, live_server, "alice@example.com", "phone", locale=LOCALES[locale])
    if width != 390:
        page.set_viewport_size(SMALL)
    return page


def tr(locale: str, text: str) -> str:
    return ZH.gettext(text) if locale == "zh" else text


def visible_tabs(page) -> list[str]:
    links = page.locator("nav.sections a:visible")
    return [links.nth(i).get_attribute("data-section") for i in range(links.count())]


@pytest.mark.spec("MOB-1", "ACC-3")
@pytest.mark.parametrize("locale", ["en", "zh"])
@pytest.mark.parametrize("width", [390, 360])
def test_the_bottom_bar_holds_the_five_sections(live_server, new_page, locale, width):
    page = phone(new_page, live_server, locale, width)
    page.goto(live_server.url + "/")
    bar = page.get_by_role("navigation", name=tr(locale, "Sections"), exact=True)
    expect(bar).to_be_visible()
    assert visible_tabs(page) == TABS

    size = page.viewport_size
    box = bar.bounding_box()
    assert abs(box["y"] + box["height"] - size["height"]) <= 1, "the bar sits on the bottom edge"
    assert page.evaluate("getComputedStyle(document.querySelector('nav.sections')).position") == (
        "fixed"
    )
    # Big enough for a thumb, and every label whole (the Chinese ones too): no ellipsis.
    for section in TABS:
        tab = page.locator(f"nav.sections a[data-section={section}]")
        tab_box = tab.bounding_box()
        assert tab_box["height"] >= 48 and tab_box["width"] >= 60, (section, tab_box)
        assert tab.locator("span").evaluate("el => el.scrollWidth <= el.clientWidth"), section
        expect(tab).to_have_text(tr(locale, page_title_of(section)))
    # Clear of the iPhone's home indicator: the bar's padding is the safe-area inset.
    assert page.evaluate("""() => [...document.styleSheets].flatMap(s => [...s.cssRules])
        .some(r => r.selectorText === '.sections'
                   && r.style.paddingBottom.includes('safe-area-inset-bottom'))""")
    expect(page.locator("nav.sections a[data-section=dashboard]")).to_have_attribute(
        "aria-current", "page"
    )
    assert_fits_the_screen(page)
    assert_accessible(page)

    # Billing and Account: one tap each.
    page.locator("nav.sections a[data-section=billing]").tap()
    page.wait_for_url(live_server.url + "/billing")
    expect(page.locator("nav.sections a[data-section=billing]")).to_have_attribute(
        "aria-current", "page"
    )
    page.locator("nav.sections a[data-section=account]").tap()
    page.wait_for_url(live_server.url + "/account")
    expect(page.locator("nav.sections a[aria-current=page]")).to_have_attribute(
        "data-section", "account"
    )

    # At the very bottom of the page, the footer ends above the bar: nothing is covered.
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    footer = page.locator("footer.footer").bounding_box()
    last = page.locator("footer.footer > *").last.bounding_box()
    top_of_bar = bar.bounding_box()["y"]
    assert last["y"] + last["height"] <= top_of_bar + 0.5, (footer, top_of_bar)


def page_title_of(section: str) -> str:
    return {
        "dashboard": "Dashboard",
        "services": "Services",
        "usage": "Usage",
        "billing": "Billing",
        "account": "Account",
    }[section]


@pytest.mark.spec("MOB-1", "ACC-3")
@pytest.mark.parametrize("locale", ["en", "zh"])
def test_more_in_the_header_lists_the_other_sections(live_server, new_page, locale):
    page = phone(new_page, live_server, locale, width=360)
    page.goto(live_server.url + "/billing")
    assert_accessible(page)
    expected = [
        s["id"]
        for s in api_get(live_server, "alice@example.com", "/api/v1/sections")["items"]
        if s["id"] not in TABS
    ]
    assert "topup" in expected  # and the demo's partner section, Weather
    more = page.get_by_role("navigation", name=tr(locale, "More sections"), exact=True)
    summary = more.locator("summary")
    expect(summary).to_have_text(tr(locale, "More"))
    assert summary.bounding_box()["height"] >= 44
    assert summary.bounding_box()["y"] < page.locator("main").bounding_box()["y"]  # the header
    sheet = more.locator(".more-sheet")
    expect(sheet).to_be_hidden()
    summary.tap()
    expect(sheet).to_be_visible()
    links = sheet.locator("a")
    assert [links.nth(i).get_attribute("data-section") for i in range(links.count())] == expected
    box = sheet.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"]
    for i in range(links.count()):
        assert links.nth(i).bounding_box()["height"] >= 44
    # Open, the sheet covers part of the page: axe checks the menu itself (the page, closed).
    assert_accessible(page, within=".sections-more")
    page.keyboard.press("Escape")  # portal.js closes it
    expect(sheet).to_be_hidden()
    summary.tap()
    page.touchscreen.tap(4, 400)  # and so does a tap outside it (the page margin)
    expect(sheet).to_be_hidden()

    summary.tap()
    links.first.tap()
    page.wait_for_url(live_server.url + "/topup")
    expect(page.locator(".sections-more summary")).to_have_class(re.compile(r"\bis-current\b"))
    assert_fits_the_screen(page)


@pytest.mark.spec("MOB-1", "ACC-3")
def test_a_desktop_keeps_every_section_in_the_bar_under_the_header(live_server, new_page):
    page = signed_in(new_page, live_server, "alice@example.com", "desktop")
    page.goto(live_server.url + "/")
    sections = api_get(live_server, "alice@example.com", "/api/v1/sections")["items"]
    assert visible_tabs(page) == [s["id"] for s in sections]  # Top-up included
    bar = page.locator("nav.sections")
    assert page.evaluate("getComputedStyle(document.querySelector('nav.sections')).position") == (
        "static"
    )
    assert bar.bounding_box()["y"] < page.locator("main").bounding_box()["y"]
    expect(page.locator(".sections-more")).to_be_hidden()
    assert_accessible(page)


def dashboard_alerts(live_server) -> list[dict]:
    return api_get(live_server, "alice@example.com", "/api/v1/dashboard")["alerts"]


@pytest.mark.spec("MOB-1", "NOT-2")
@pytest.mark.parametrize("locale", ["en", "zh"])
def test_several_notices_fold_into_one_line_on_a_phone(live_server, new_page, locale):
    alerts = dashboard_alerts(live_server)
    assert len(alerts) >= 2, f"the demo's alice should have several alerts: {alerts}"
    page = phone(new_page, live_server, locale)
    page.goto(live_server.url + "/")
    shown = page.locator(".alerts .alert")
    expect(shown).to_have_count(len(alerts))
    # The most important one shows; the others wait behind "N more notices".
    rank = {"danger": 0, "warning": 1}
    most = min(alerts, key=lambda a: rank.get(a["level"], 2))["level"]
    expect(shown.first).to_be_visible()
    expect(shown.first).to_have_class(re.compile(rf"\balert-{most}\b"))
    expect(page.locator(".alerts .alert:visible")).to_have_count(1)
    toggle = page.locator(".alerts-more summary")
    rest = len(alerts) - 1
    words = ("%(num)d more notice", "%(num)d more notices", rest)
    expect(toggle).to_have_text(
        (ZH.ngettext(*words) if locale == "zh" else words[rest > 1]) % {"num": rest}
    )
    assert toggle.bounding_box()["height"] >= 44
    # The first screen keeps room for the dashboard's own cards.
    assert toggle.bounding_box()["y"] + toggle.bounding_box()["height"] < 844 / 2
    assert_accessible(page)

    toggle.tap()
    expect(page.locator(".alerts .alert:visible")).to_have_count(len(alerts))
    expect(page.locator(".alerts-more")).to_have_attribute("open", "")
    assert_fits_the_screen(page)
    assert_accessible(page)
    toggle.tap()
    expect(page.locator(".alerts .alert:visible")).to_have_count(1)


@pytest.mark.spec("MOB-1", "NOT-2")
def test_a_desktop_shows_every_notice(live_server, new_page):
    alerts = dashboard_alerts(live_server)
    page = signed_in(new_page, live_server, "alice@example.com", "desktop")
    page.goto(live_server.url + "/")
    expect(page.locator(".alerts .alert:visible")).to_have_count(len(alerts))
    expect(page.locator(".alerts-more")).to_be_hidden()


@pytest.mark.spec("MOB-1")
@pytest.mark.parametrize("locale", ["en", "zh"])
@pytest.mark.parametrize("status", ["unpaid", "paid"])
def test_an_invoice_fits_a_360_px_phone(live_server, new_page, locale, status):
    invoices = api_get(live_server, "alice@example.com", "/api/v1/invoices")["items"]
    invoice = next(i for i in invoices if (i["status"] == "paid") == (status == "paid"))
    page = phone(new_page, live_server, locale, width=360)
    assert page.goto(f"{live_server.url}/billing/invoices/{invoice['id']}").status == 200
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    table = page.locator("table.lines")
    # No scroll box either: the table itself is as wide as the screen allows.
    assert table.evaluate("el => el.parentElement.scrollWidth <= el.parentElement.clientWidth")
    rows = table.locator("tbody tr")
    assert rows.count() >= 1
    width = page.viewport_size["width"]
    for i in range(rows.count()):
        row = rows.nth(i)
        box = row.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
        # One block per line: the description above, the tax rate and the amount under it.
        description, tax, amount = (row.locator("td").nth(n).bounding_box() for n in range(3))
        assert description["y"] + description["height"] <= amount["y"] + 0.5
        assert tax["x"] < amount["x"] and abs(tax["y"] - amount["y"]) < 12
        assert amount["x"] + amount["width"] <= width
    total = table.locator("tfoot tr.total")
    label, amount = total.locator("th").bounding_box(), total.locator("td").bounding_box()
    assert label["x"] < amount["x"] and amount["x"] + amount["width"] <= width
    assert_accessible(page)


@pytest.mark.spec("MOB-1")
def test_a_desktop_invoice_is_still_a_table(live_server, new_page):
    invoices = api_get(live_server, "alice@example.com", "/api/v1/invoices")["items"]
    page = signed_in(new_page, live_server, "alice@example.com", "desktop")
    page.goto(f"{live_server.url}/billing/invoices/{invoices[0]['id']}")
    table = page.locator("table.lines")
    assert table.evaluate("el => getComputedStyle(el).display") == "table"
    expect(table.locator("thead")).to_be_visible()
    cells = table.locator("tbody tr").first.locator("td")
    boxes = [cells.nth(n).bounding_box() for n in range(3)]
    assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]  # side by side, one row per line
