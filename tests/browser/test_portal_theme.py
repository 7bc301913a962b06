"""The second shipped theme, Harbour, in Chromium (ENG-5): it looks clearly different, yet every
page it leaves to the default theme still passes the page checks, light and dark."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from portal_checks import assert_accessible, check_page, signed_in

pytestmark = pytest.mark.browser
PAGES = ["/", "/services", "/usage", "/billing", "/account", "/account/notifications"]


@pytest.fixture(scope="module")
def live_server_env() -> dict:
    return {"PORTICO_THEME": "harbour"}


def style(page, selector: str, prop: str) -> str:
    return page.locator(selector).first.evaluate(f"el => getComputedStyle(el)['{prop}']")


@pytest.mark.spec("ENG-5")
@pytest.mark.parametrize("viewport", ["phone", "desktop"], indirect=True)
def test_harbour_looks_its_own(live_server, new_page, viewport, requests_seen):
    page = new_page(viewport)
    page.goto(live_server.url + "/")
    expect(page.locator("h1")).to_have_text("Welcome to Harbour Telecom")
    assert page.title().endswith("· Harbour Telecom")
    assert style(page, ".topbar", "backgroundColor") == "rgb(11, 110, 105)"  # a teal header
    assert "serif" in style(page, "h1", "fontFamily")
    assert style(page, ".hero .button", "borderTopLeftRadius") == "4px"  # square-ish buttons
    assert page.locator('meta[name="theme-color"]').get_attribute("content") == "#0b6e69"
    check_page(page, live_server, requests_seen)


@pytest.mark.spec("ENG-5", "MOB-1")
@pytest.mark.parametrize("viewport", ["phone", "desktop"], indirect=True)
@pytest.mark.parametrize("path", PAGES)
def test_harbour_pages_pass_the_checks(live_server, new_page, viewport, path, requests_seen):
    page = signed_in(new_page, live_server, "alice@example.com", viewport)
    assert page.goto(live_server.url + path).status == 200
    check_page(page, live_server, requests_seen)
    page.emulate_media(color_scheme="dark")
    assert_accessible(page)
