"""The portal as a progressive web app in Chromium (MOB-3): installable, offline copies of the
customer's own pages marked with the time they were fetched, nothing left behind at sign-out,
and every page still working with JavaScript off."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from playwright.sync_api import expect

from portal_checks import api_get, check_page, signed_in, wait_until

pytestmark = pytest.mark.browser
SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"
CHROMIUM = os.environ.get("PORTICO_TEST_CHROMIUM", "/usr/bin/chromium")  # as conftest.py
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def wait_for_worker(page) -> None:
    """Until the service worker runs and controls the page (it claims open pages at once)."""
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    wait_until(page, "() => navigator.serviceWorker.controller !== null")


SAVED_PAGES = """() => caches.has("portico-pages").then(has => has
    ? caches.open("portico-pages").then(c => c.keys()).then(k => k.map(r => new URL(r.url).pathname))
    : [])"""


def saved_pages(page) -> list[str]:
    return page.evaluate(SAVED_PAGES)


def wait_for_saved_pages(page, expected: list[str]) -> None:
    """Until the worker has saved exactly ``expected`` (it saves after the page has shown)."""
    wait_until(
        page,
        f"() => ({SAVED_PAGES})().then(p => JSON.stringify(p.sort()) === "
        f"{json.dumps(json.dumps(sorted(expected), separators=(',', ':')))})",
    )


@pytest.mark.spec("MOB-3")
def test_the_portal_is_installable_and_offers_its_install_button(live_server, browser, tmp_path):
    # Chromium never offers to install from an incognito window, which every Playwright
    # context is, so this test runs its own profile.
    context = browser.browser_type.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    try:
        page = context.new_page()
        page.goto(live_server.url + "/")
        wait_for_worker(page)
        cdp = context.new_cdp_session(page)
        manifest = cdp.send("Page.getAppManifest")
        assert manifest["url"] == live_server.url + "/manifest.webmanifest"
        assert manifest["errors"] == []
        assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []

        # The browser's own beforeinstallprompt reveals the button; pressing it asks once.
        install = page.get_by_role("button", name="Install the app")
        expect(install).to_be_visible(timeout=15_000)
        assert install.bounding_box()["height"] >= 44
        page.screenshot(
            path=str(SCREENSHOTS / "test_portal_pwa__install_button.png"), full_page=True
        )
        # Pressing it hides it and shows the browser's prompt. Checked in the click's own turn:
        # Chromium may offer again (a new beforeinstallprompt) once that prompt goes away.
        hidden = page.evaluate(
            "() => { const b = document.querySelector('[data-install]');"
            " b.click(); return b.hidden; }"
        )
        assert hidden is True
    finally:
        context.close()


@pytest.mark.spec("MOB-3")
def test_the_manifest_names_the_brand_icons_and_sections(live_server):
    status, headers, body = live_server.get("/manifest.webmanifest")
    assert status == 200 and headers["Content-Type"].startswith("application/manifest+json")
    manifest = json.loads(body)
    assert manifest["name"] == "Portico" and manifest["start_url"] == "/"
    assert manifest["display"] == "standalone" and manifest["scope"] == "/"
    sizes = {(i["sizes"], i["purpose"]) for i in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in manifest["icons"]:
        status, headers, data = live_server.get(icon["src"])
        assert status == 200 and headers["Content-Type"].startswith(icon["type"])
        assert "immutable" in headers["Cache-Control"]  # fingerprinted
    shortcuts = {s["url"] for s in manifest["shortcuts"]}
    assert {"/services", "/usage"} <= shortcuts
    chinese = json.loads(live_server.get("/manifest.webmanifest", {"Accept-Language": "zh-CN"})[2])
    assert chinese["lang"] == "zh-Hans" and chinese["description"] != manifest["description"]


@pytest.mark.spec("MOB-3", "DASH-1", "USE-1", "BILL-1")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_offline_the_latest_pages_show_with_the_time_they_were_fetched(
    live_server, new_page, viewport
):
    page = signed_in(new_page, live_server, "alice@example.com", viewport)
    page.goto(live_server.url + "/")
    wait_for_worker(page)
    mobile = next(
        s
        for s in api_get(live_server, "alice@example.com", "/api/v1/services")["items"]
        if s["name"].startswith("Mobile")
    )
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    pages = ["/", "/services", f"/services/{mobile['id']}/usage", "/usage", "/billing"]
    online = {}
    for path in pages:
        page.goto(live_server.url + path)
        online[path] = page.locator("h1").inner_text()
        expect(page.locator("[data-offline-note]")).to_be_hidden()  # online: no note
    wait_for_saved_pages(page, pages)
    after = datetime.now(timezone.utc) + timedelta(seconds=1)

    page.context.set_offline(True)
    try:
        for path in pages:
            page.goto(live_server.url + path)
            assert page.locator("h1").inner_text() == online[path]
            note = page.get_by_role("status").filter(has_text="You are offline")
            expect(note).to_be_visible()
            fetched = datetime.fromisoformat(
                note.locator("time").get_attribute("datetime").replace("Z", "+00:00")
            )
            assert before <= fetched <= after
            # Shown in the customer's language and time zone, the British way for English.
            assert re.fullmatch(
                r"\d{1,2} \w{3} \d{4}, \d{2}:\d{2}", note.locator("time").inner_text()
            ), note.inner_text()
        page.goto(live_server.url + f"/services/{mobile['id']}/usage")
        expect(page.locator('section[data-balance="data"] progress')).to_be_visible()
        page.screenshot(
            path=str(SCREENSHOTS / "test_portal_pwa__offline_usage_phone.png"), full_page=True
        )

        # A page never opened: the offline page, listing what is saved on this device.
        page.goto(live_server.url + "/account/activity")
        expect(page.locator("h1")).to_have_text("You are offline")
        saved = page.get_by_role("navigation", name="Saved pages").get_by_role("link")
        expect(saved).to_have_count(len(pages))
        assert sorted(link.get_attribute("href") for link in saved.all()) == sorted(pages)
        assert all(text.strip() for text in saved.all_inner_texts())  # named by page title
        saved.and_(page.locator('[href="/billing"]')).click()
        expect(page.locator("h1")).to_have_text(online["/billing"])
    finally:
        page.context.set_offline(False)


@pytest.mark.spec("MOB-3", "LIM-2")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_signing_out_leaves_no_saved_pages_behind(live_server, new_page, viewport):
    page = new_page(viewport)
    page.goto(live_server.url + "/login")
    wait_for_worker(page)  # so that it sees the dashboard the sign-in leads to
    page.get_by_label("Email address").fill("bob@example.com")
    page.get_by_label("Password").fill(live_server.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/")
    page.goto(live_server.url + "/billing")
    page.goto(live_server.url + "/usage")
    wait_for_saved_pages(page, ["/", "/billing", "/usage"])

    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(re.compile(r".*/login\?notice=signed-out"))
    assert saved_pages(page) == []
    page.context.set_offline(True)
    try:
        page.goto(live_server.url + "/usage")
        expect(page.locator("h1")).to_have_text("You are offline")
        expect(page.get_by_role("main")).not_to_contain_text("Bob")
    finally:
        page.context.set_offline(False)


@pytest.mark.spec("MOB-1", "ACC-1", "BILL-2")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_the_portal_works_without_javascript(live_server, browser, viewport):
    """Sign in, move around, change a setting and pay a bill with scripts switched off."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, java_script_enabled=False, locale="en-GB"
    )
    try:
        page = context.new_page()
        page.goto(live_server.url + "/login")
        page.get_by_label("Email address").fill("carol@example.com")
        page.get_by_label("Password").fill(live_server.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(live_server.url + "/")
        # "More" in the header is a plain <details>: it opens without a script.
        page.locator(".sections-more summary").click()
        page.locator(".sections-more a[data-section=topup]").click()
        page.wait_for_url(live_server.url + "/topup")
        page.locator("nav.sections a[data-section=account]:visible").click()  # a tab
        page.wait_for_url(live_server.url + "/account")
        page.get_by_role("link", name="Edit phone number").click()
        page.get_by_label("Phone number").fill("07700 900999")
        page.get_by_role("button", name="Save changes").click()
        page.wait_for_url(re.compile(r".*/account(\?.*)?$"))
        expect(page.locator('[data-field="phone"]')).to_contain_text("+447700900999")

        page.goto(live_server.url + "/billing")
        row = page.locator("tr[data-invoice]", has=page.get_by_role("link", name="Pay now")).first
        row.get_by_role("link", name="Pay now").click()
        page.get_by_label("A new card").check()
        page.get_by_label("Test card").select_option("sbx_ok_visa_4242_12_2034")
        page.locator("[data-pay-button]").click()
        page.wait_for_url(re.compile(r".*/billing/invoices/\d+\?done=paid$"))
        assert page.locator("h1 [data-status]").get_attribute("data-status") == "paid"
        page.screenshot(
            path=str(SCREENSHOTS / "test_portal_pwa__no_javascript_phone.png"), full_page=True
        )
    finally:
        context.close()


@pytest.mark.spec("MOB-1")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_nothing_moves_once_a_page_has_drawn(live_server, new_page, viewport):
    """Cumulative layout shift stays at zero on the busiest pages (no late-loading boxes)."""
    page = signed_in(new_page, live_server, "alice@example.com", viewport)
    page.add_init_script("""
        window.__shift = 0;
        new PerformanceObserver(list => { for (const e of list.getEntries())
            if (!e.hadRecentInput) window.__shift += e.value; })
          .observe({type: "layout-shift", buffered: true});""")
    for path in ("/", "/services", "/usage", "/billing", "/account"):
        page.goto(live_server.url + path)
        page.wait_for_load_state("load")
        # Two frames after fonts are ready: whatever late work there is has been laid out.
        page.evaluate("""document.fonts.ready.then(() => new Promise(done =>
            requestAnimationFrame(() => requestAnimationFrame(done))))""")
        assert page.evaluate("window.__shift") < 0.01, path
        check_page(page, live_server)
