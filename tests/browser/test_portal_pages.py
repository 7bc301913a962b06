"""Every portal page, at phone (390×844) and desktop size, light and dark (MOB-1, ENG-5).

Each page must pass ``portal_checks.check_page``: axe-core finds no serious or critical
WCAG 2.2 AA violation, nothing is wider than the screen, nothing comes from another host,
and the HTML is under 100 KB. Each test leaves a screenshot in tests/screenshots/, and the
module writes the weights it measured to tests/screenshots/page-weight.md (docs/portal.md
quotes them). The flows through these pages are in the other test_portal_*.py modules.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from portal_checks import api_get, assert_accessible, check_page, session_cookies, signed_in

pytestmark = pytest.mark.browser
REPORT = Path(__file__).resolve().parent.parent / "screenshots" / "page-weight.md"

#: (who, path): who is "" for a visitor, else the demo customer signed in. Paths name ids
#: found through the API: {mobile} (a mobile line), {unpaid} and {paid} (invoices).
PAGES = [
    ("", "/"),
    ("", "/login"),
    ("", "/password/forgot"),
    ("", "/support"),
    ("", "/offline"),
    ("", "/staff/login"),
    ("", "/no-such-page"),
    ("alice", "/"),
    ("alice", "/services"),
    ("alice", "/services/{mobile}"),
    ("alice", "/services/{mobile}/cancel"),
    ("alice", "/services/{mobile}/modify"),
    ("alice", "/usage"),
    ("alice", "/services/{mobile}/usage"),
    ("alice", "/services/{mobile}/usage?days=90&type=voice"),
    ("alice", "/billing"),
    ("alice", "/billing?status=unpaid"),
    ("alice", "/billing/transactions"),
    ("alice", "/billing/invoices/{unpaid}"),
    ("alice", "/billing/invoices/{paid}"),
    ("alice", "/billing/invoices/{unpaid}/pay"),
    ("alice", "/billing/payment-methods"),
    ("alice", "/account"),
    ("alice", "/account/edit/phone"),
    ("alice", "/account/email"),
    ("alice", "/account/password"),
    ("alice", "/account/contacts"),
    ("alice", "/account/sites"),
    ("alice", "/account/security"),
    ("alice", "/account/2fa/setup"),
    ("alice", "/account/activity"),
    ("alice", "/account/notifications"),
    ("alice", "/support"),
    ("alice", "/account/api-keys"),
    ("bob", "/account/api-keys"),
    ("alice", "/no-such-page"),
]
STATUS = {"/no-such-page": 404}


@pytest.fixture(scope="module")
def ids(live_server) -> dict:
    services = api_get(live_server, "alice@example.com", "/api/v1/services")["items"]
    invoices = api_get(live_server, "alice@example.com", "/api/v1/invoices")["items"]
    return {
        "mobile": next(s["id"] for s in services if s["name"].startswith("Mobile")),
        "unpaid": next(i["id"] for i in invoices if i["status"] != "paid"),
        "paid": next(i["id"] for i in invoices if i["status"] == "paid"),
    }


@pytest.fixture(scope="module")
def weights():
    """Collects (path, viewport) → weights; written as a Markdown table when the module ends."""
    found: dict[tuple[str, str, str], dict] = {}
    yield found
    if not found:
        return
    rows = [
        "| page | signed in | viewport | HTML (bytes) | all files (bytes) | requests |",
        "|---|---|---|---:|---:|---:|",
    ]
    for (who, path, viewport), w in sorted(
        found.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])
    ):
        rows.append(
            f"| `{path}` | {who or '—'} | {viewport} | {w['html']:,} | {w['files']:,} "
            f"| {w['requests']} |"
        )
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("\n".join(rows) + "\n", encoding="utf-8")


def open_page(new_page, live_server, who, path, ids, viewport):
    page = (
        signed_in(new_page, live_server, f"{who}@example.com", viewport)
        if who
        else new_page(viewport)
    )
    answer = page.goto(live_server.url + path.format(**ids))
    assert answer.status == STATUS.get(path, 200), (path, answer.status)
    return page


@pytest.mark.spec("MOB-1")
@pytest.mark.parametrize("viewport", ["phone", "desktop"], indirect=True)
@pytest.mark.parametrize("who,path", PAGES, ids=[f"{w or 'visitor'}:{p}" for w, p in PAGES])
def test_every_page_is_accessible_fits_and_is_light(
    live_server, new_page, viewport, who, path, ids, weights, requests_seen, console_errors
):
    page = open_page(new_page, live_server, who, path, ids, viewport)
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("main#main")).to_be_visible()
    weights[(who, path, viewport)] = check_page(page, live_server, requests_seen)
    # The browser reports the 404 page's own status as a console error; nothing else may fail.
    assert not [e for e in console_errors if not (path in STATUS and "status of 404" in e)]
    # The sections sit at the bottom of a phone, under the header on a desktop; a visitor
    # signed out has none (they are a customer's).
    if not who:
        assert page.locator("nav.sections").count() == 0
        return
    nav = page.locator("nav.sections").bounding_box()
    if viewport == "phone":
        assert abs(nav["y"] + nav["height"] - page.viewport_size["height"]) <= 1
    else:
        assert nav["y"] < page.locator("main").bounding_box()["y"]


@pytest.mark.spec("MOB-1")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
@pytest.mark.parametrize("who,path", PAGES, ids=[f"{w or 'visitor'}:{p}" for w, p in PAGES])
def test_every_page_is_accessible_in_dark_mode(live_server, new_page, viewport, who, path, ids):
    page = open_page(new_page, live_server, who, path, ids, viewport)
    page.emulate_media(color_scheme="dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != "rgb(243, 245, 249)", "the dark palette did not apply"
    assert_accessible(page)


def test_a_service_s_actions_pages_pass_too(live_server, new_page, ids, requests_seen):
    """Whatever actions a service offers (top-up, add-ons, ... as plugins add them) pass."""
    service = api_get(live_server, "alice@example.com", f"/api/v1/services/{ids['mobile']}")
    hrefs = sorted({a["href"] for a in service.get("actions", []) if a["href"].startswith("/")})
    assert hrefs, "the service offers no actions"
    page = signed_in(new_page, live_server, "alice@example.com", "phone")
    for href in hrefs:
        answer = page.goto(live_server.url + href)
        assert answer.status == 200, (href, answer.status)
        check_page(page, live_server, requests_seen)


@pytest.mark.spec("IMP-1", "ACC-2")
def test_staff_console_pages_pass(live_server, new_page, requests_seen):
    page = new_page("desktop")
    page.goto(live_server.url + "/staff")
    page.get_by_label("Email address").fill("agent@example.com")
    page.get_by_label("Password").fill(live_server.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/staff")
    check_page(page, live_server, requests_seen)
    page.get_by_label("Find a customer").fill("Alice")
    page.get_by_role("button", name="Search").click()
    check_page(page, live_server, requests_seen)
    page.get_by_role("link", name="C-100001").click()
    page.wait_for_url(re.compile(r".*/staff/customers/\d+$"))
    check_page(page, live_server, requests_seen)
    page.get_by_role("link", name="Two-step sign-in").click()
    page.wait_for_url(live_server.url + "/staff/2fa")
    assert page.get_by_alt_text("QR code for your authenticator app").is_visible()
    check_page(page, live_server, requests_seen)


@pytest.mark.spec("IMP-1", "ACC-2")
def test_staff_console_customer_page_passes_on_a_phone(live_server, new_page, requests_seen):
    """An administrator's view (invoices and payments too) on a phone: the console's tabs."""
    page = new_page("phone")
    page.goto(live_server.url + "/staff/login")
    page.get_by_label("Email address").fill("admin@example.com")
    page.get_by_label("Password").fill(live_server.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/staff")
    page.get_by_label("Find a customer").fill("07700 900457")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="C-100002").click()
    page.wait_for_url(re.compile(r".*/staff/customers/\d+$"))
    assert page.locator("#payments tbody tr").count() > 0
    tabs = page.locator("nav.console-nav a").all_inner_texts()
    assert "Customers" in tabs and "Webhooks" in tabs and "Billing" not in tabs
    check_page(page, live_server, requests_seen)


def test_the_sign_in_cookies_are_a_real_session(live_server):
    """The suite's shortcut signs in through the API: its cookie must open the portal."""
    cookies = {c["name"] for c in session_cookies(live_server, "alice@example.com")}
    assert "portico_session" in cookies
    account = api_get(live_server, "alice@example.com", "/api/v1/me")
    assert account


@pytest.mark.spec("MOB-1")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
@pytest.mark.parametrize(
    "path", ["/", "/services/{mobile}/usage", "/billing", "/account", "/account/notifications"]
)
def test_chinese_pages_pass_too(live_server, new_page, viewport, path, ids, requests_seen):
    page = signed_in(new_page, live_server, "alice@example.com", viewport, locale="zh-CN")
    assert page.goto(live_server.url + path.format(**ids)).status == 200
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    tabs = page.locator("nav.sections > ul > li:visible").all_inner_texts()
    assert "Dashboard" not in tabs and "概览" in " ".join(tabs)
    check_page(page, live_server, requests_seen)
