"""The demo portal's shell in a real browser: navigation, layout per screen size, languages."""

from __future__ import annotations

import json

import pytest

from engine.i18n import Translator
from portal_checks import assert_only_own_host, session_cookies

pytestmark = pytest.mark.browser

ZH = Translator().get("zh_Hans")
HERO = "Your account, whenever you need it"


def sections(live_server) -> list[dict]:
    status, _, body = live_server.get("/api/v1/sections")
    assert status == 200
    return json.loads(body)["items"]


@pytest.mark.spec("ACC-3", "MOB-1")
@pytest.mark.parametrize("viewport", ["phone", "desktop"], indirect=True)
def test_home_page_navigation_comes_from_the_sections_hook(
    live_server, page, viewport, requests_seen, console_errors
):
    answer = page.goto(live_server.url + "/")
    assert answer.status == 200
    assert page.locator("h1").inner_text() == HERO
    # A signed-out visitor sees no sections (they are a customer's), only "Sign in".
    assert page.locator("nav.sections").count() == 0
    assert page.locator("header a[href='/login']").is_visible()
    page.context.add_cookies(session_cookies(live_server, "alice@example.com"))
    page.goto(live_server.url + "/")

    expected = [(s["path"], s["title"]) for s in sections(live_server)]
    assert ("/", "Dashboard") in expected
    more = page.locator(".sections-more summary")
    if viewport == "phone" and len(expected) > 5:
        # Phones show five sections as tabs, and "More" in the header lists the rest.
        assert page.locator("nav.sections > ul > li:visible").count() == 5
        more.click()
        links = page.locator("nav.sections a:visible, .sections-more a:visible")
    else:
        assert not more.is_visible()
        links = page.locator("nav.sections a:visible")
    shown = [
        (links.nth(i).get_attribute("href"), links.nth(i).inner_text().strip())
        for i in range(links.count())
    ]
    # In menu order (on a phone: the tabs', then More's); every section somewhere.
    assert sorted(shown) == sorted(expected)
    if viewport == "desktop":
        assert shown == expected

    # Touch-friendly and on screen: every link visible and at least 44 px tall.
    for i in range(links.count()):
        assert links.nth(i).is_visible()
        assert links.nth(i).bounding_box()["height"] >= 44
    # Phones get a bottom tab bar; desktops a bar under the header.
    nav = page.locator("nav.sections").bounding_box()
    main = page.locator("main").bounding_box()
    size = page.viewport_size
    if viewport == "phone":
        assert abs(nav["y"] + nav["height"] - size["height"]) <= 1
    else:
        assert nav["y"] + nav["height"] <= main["y"] + 1
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]

    # Every section link leads to a page (or to sign-in), never to a 404.
    for href, title in shown:
        status, headers, _ = live_server.get(href)
        assert status in (200, 303), (title, href, status)
        if status == 303:
            assert headers["Location"].startswith("/login"), (title, href, headers["Location"])

    page.locator("nav.sections a[data-section=dashboard]").click()
    page.wait_for_url(live_server.url + "/")
    assert (
        page.locator("nav.sections a[data-section=dashboard]").get_attribute("aria-current")
        == "page"
    )
    assert_only_own_host(live_server, requests_seen)
    assert not console_errors


@pytest.mark.parametrize("viewport", ["phone", "desktop"], indirect=True)
def test_language_switcher_switches_to_chinese_and_back(
    live_server, page, viewport, requests_seen, console_errors
):
    page.goto(live_server.url + "/")
    assert page.locator("html").get_attribute("lang") == "en"

    page.select_option("#lang", "zh_Hans")
    with page.expect_navigation():
        page.locator(".lang-switch button[type=submit]").click()
    assert page.url == live_server.url + "/"
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    assert page.locator("h1").inner_text() == ZH.gettext(HERO) != HERO
    sign_in_link = page.locator("header a[href='/login']").inner_text().strip()
    assert sign_in_link == ZH.gettext("Sign in") != "Sign in"
    assert page.locator("#lang").input_value() == "zh_Hans"

    page.goto(live_server.url + "/")  # remembered by the cookie
    assert page.locator("html").get_attribute("lang") == "zh-Hans"

    page.select_option("#lang", "en")
    with page.expect_navigation():
        page.locator(".lang-switch button[type=submit]").click()
    assert page.locator("h1").inner_text() == HERO
    assert_only_own_host(live_server, requests_seen)
    assert not console_errors


def test_a_chinese_browser_gets_chinese_first(live_server, new_page, requests_seen):
    page = new_page("phone", locale="zh-CN")
    page.goto(live_server.url + "/")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    assert page.locator("h1").inner_text() == ZH.gettext(HERO)
    assert page.title().startswith(ZH.gettext("Welcome"))
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    assert_only_own_host(live_server, requests_seen)


def test_demo_server_keeps_its_state_in_the_data_folder(live_server):
    assert (live_server.data_dir / "portico.sqlite3").exists() or any(
        live_server.data_dir.glob("*.sqlite3")
    )
    assert live_server.get("/healthz")[0] == 200


@pytest.mark.spec("MOB-1")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_the_appearance_switch_beats_the_device_and_is_remembered(live_server, new_page, viewport):
    page = new_page(viewport)
    page.emulate_media(color_scheme="light")
    page.goto(live_server.url + "/")
    body = "getComputedStyle(document.body).backgroundColor"
    light = page.evaluate(body)
    page.select_option("#scheme", "dark")
    with page.expect_navigation():
        page.locator(".scheme-switch button[type=submit]").click()
    dark = page.evaluate(body)
    assert dark != light, "choosing dark did not darken a light device's page"
    page.goto(live_server.url + "/login")  # remembered on the next page
    assert page.evaluate(body) == dark
    page.emulate_media(color_scheme="dark")
    page.select_option("#scheme", "light")
    with page.expect_navigation():
        page.locator(".scheme-switch button[type=submit]").click()
    assert page.evaluate(body) == light  # light on a dark device too
    page.select_option("#scheme", "system")
    with page.expect_navigation():
        page.locator(".scheme-switch button[type=submit]").click()
    assert page.evaluate(body) == dark  # the device (dark) decides again
