"""Account flows in Chromium at phone and desktop size: details and the edit flow, email change
by emailed link, password, API keys, notification preferences, activity log, support page
(ACCT-1..5, API-1, API-3, NOT-3, SUP-1, MOB-1). Sign-in and 2FA are in test_identity_browser.py.

Every page a flow passes through — its error states included — passes ``check_page``.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from portal_checks import body_text, check_page, sign_in, signed_in, wait_for_mail

pytestmark = pytest.mark.browser


def api_status(live_server, path: str, key: str, method: str = "GET") -> int:
    request = urllib.request.Request(
        live_server.url + path,
        method=method,
        data=b"{}" if method != "GET" else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as answer:
        return answer.code


@pytest.mark.spec("ACCT-1", "ACCT-2", "ACCT-3", "ACCT-5", "MOB-1")
@pytest.mark.parametrize("viewport", ["phone", "desktop"], indirect=True)
def test_details_then_edit_the_phone_number_field_by_field(
    live_server, new_page, viewport, requests_seen
):
    page = signed_in(new_page, live_server, "alice@example.com", viewport)
    page.goto(live_server.url + "/account")
    details = page.get_by_role("region", name="Details")
    for read_only in ("C-100001", "Alice Example", "Individual"):
        expect(details).to_contain_text(read_only)
    details.get_by_role("link", name="Edit phone number").click()
    page.wait_for_url(live_server.url + "/account/edit/phone")
    phone = page.get_by_label("Phone number")
    expect(phone).to_have_attribute("type", "tel")
    expect(phone).to_have_attribute("autocomplete", "tel")

    phone.fill("call me maybe")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("alert")).to_contain_text("Please correct the fields marked below")
    expect(phone).to_have_attribute("aria-invalid", "true")
    error = page.locator("#f-phone-error")
    expect(error).to_be_visible()
    assert "f-phone-error" in phone.get_attribute("aria-describedby")
    check_page(page, live_server, requests_seen)  # the error state is accessible too

    number = "07700 900321" if viewport == "phone" else "07700 900654"
    phone.fill(number)
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(re.compile(r".*/account\?notice=phone$"))
    expect(
        page.get_by_role("status").filter(has_text="phone number has been saved")
    ).to_be_visible()
    expect(page.locator('[data-field="phone"]')).to_contain_text(
        "+44" + number[1:].replace(" ", "")
    )
    check_page(page, live_server, requests_seen)

    page.get_by_role("link", name="Activity log").click()
    expect(page.locator(".activity-item").first).to_contain_text("Account details changed")
    check_page(page, live_server, requests_seen)


@pytest.mark.spec("ACCT-1", "ACCT-3")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_change_the_email_address_through_the_emailed_link(
    live_server, new_page, viewport, requests_seen
):
    page = signed_in(new_page, live_server, "carol@example.com", viewport)
    page.goto(live_server.url + "/account")
    page.get_by_role("link", name="Edit email address").click()
    email = page.get_by_label("New email address")
    expect(email).to_have_attribute("inputmode", "email")
    email.fill("not-an-address")
    page.get_by_label("Your password").fill(live_server.password)
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#f-email-error")).to_be_visible()
    check_page(page, live_server, requests_seen)

    page.get_by_label("New email address").fill("carol.accounts@example.com")
    page.get_by_label("Your password").fill(live_server.password)
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(re.compile(r".*/account\?notice=email-sent$"))
    expect(page.locator('[data-field="email"]')).to_contain_text("carol@example.com")
    expect(page.locator('[data-field="email"]')).to_contain_text("carol.accounts@example.com")

    message = wait_for_mail(
        live_server, "Confirm your new email address", "carol.accounts@example.com"
    )
    link = re.search(r"https?://\S+/account/email/verify\?token=\S+", body_text(message)).group(0)
    page.goto(live_server.url + "/account/email/verify?" + link.split("?", 1)[1])
    check_page(page, live_server, requests_seen)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(re.compile(r".*/account\?notice=email$"))
    expect(page.locator('[data-field="email"]')).to_contain_text("carol.accounts@example.com")


@pytest.mark.spec("ACCT-4", "PWD-2")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_change_the_password_needs_the_current_one(live_server, new_page, viewport, requests_seen):
    page = new_page(viewport)
    sign_in(page, live_server, "alice@example.com")
    page.wait_for_url(live_server.url + "/")
    new = "Harbour-Lights-2031!"
    for current, replacement in ((live_server.password, new), (new, live_server.password)):
        page.goto(live_server.url + "/account/password")
        page.get_by_label("Current password").fill("not my password")
        page.get_by_label("New password", exact=True).fill(replacement)
        page.get_by_label("New password again").fill(replacement)
        page.get_by_role("button", name="Save changes").click()
        expect(page.locator("#f-current_password-error")).to_be_visible()
        check_page(page, live_server, requests_seen)
        page.get_by_label("Current password").fill(current)
        page.get_by_label("New password", exact=True).fill(replacement)
        page.get_by_label("New password again").fill(replacement)
        page.get_by_label("Sign out on every other device").uncheck()  # the suite's sessions
        page.get_by_role("button", name="Save changes").click()
        page.wait_for_url(re.compile(r".*/account\?notice=password$"))
        expect(
            page.get_by_role("status").filter(has_text="password has been changed")
        ).to_be_visible()


@pytest.mark.spec("API-1", "API-3")
@pytest.mark.parametrize("viewport", ["phone", "desktop"], indirect=True)
def test_generate_a_read_only_api_key_use_it_and_revoke_it(
    live_server, new_page, viewport, requests_seen
):
    page = signed_in(new_page, live_server, "bob@example.com", viewport)
    page.goto(live_server.url + "/account")
    page.get_by_role("link", name="API access").click()
    page.wait_for_url(live_server.url + "/account/api-keys")
    name = f"Stock sync ({viewport})"
    page.get_by_label("Name").fill(name)
    page.get_by_label("Read only").check()
    page.get_by_label("Expires on").fill((date.today() + timedelta(days=30)).isoformat())
    page.get_by_role("button", name="Generate").click()
    shown = page.get_by_role("status").filter(has_text="Your new key")
    expect(shown).to_be_visible()
    key = shown.locator("#new-api-key").inner_text().strip()
    assert len(key) > 20
    check_page(page, live_server, requests_seen)

    assert api_status(live_server, "/api/v1/me", key) == 200
    assert api_status(live_server, "/api/v1/account/api-keys", key, "POST") == 403  # read-only
    page.goto(live_server.url + "/account/api-keys")
    assert key not in page.content()  # shown once only
    row = page.locator("tr[data-key]", has_text=name)
    page.once("dialog", lambda d: d.dismiss())
    row.get_by_role("button", name="Revoke").click()
    assert api_status(live_server, "/api/v1/me", key) == 200  # not revoked: the answer was no
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name="Revoke").click()
    page.wait_for_url(re.compile(r".*/account/api-keys\?notice=revoked$"))
    expect(page.locator("tr[data-key]", has_text=name)).to_contain_text("Revoked")
    assert api_status(live_server, "/api/v1/me", key) == 401


@pytest.mark.spec("NOT-3", "ACCT-1")
@pytest.mark.parametrize("viewport", ["phone", "desktop"], indirect=True)
def test_notification_preferences_are_saved_and_wrong_numbers_refused(
    live_server, new_page, viewport, requests_seen
):
    page = signed_in(new_page, live_server, "alice@example.com", viewport)
    page.goto(live_server.url + "/account")
    page.get_by_role("link", name="Edit preferences").click()
    page.wait_for_url(live_server.url + "/account/notifications")
    page.get_by_label("One daily summary").check()
    page.get_by_label("Data left (%)").fill("0")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#threshold_data-error")).to_be_visible()
    expect(page.get_by_label("Data left (%)")).to_have_attribute("aria-invalid", "true")
    check_page(page, live_server, requests_seen)

    page.get_by_label("Data left (%)").fill("25")
    page.get_by_label("Usage and low balance: Email").uncheck()
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(re.compile(r".*/account/notifications\?saved=1$"))
    expect(page.get_by_role("status").filter(has_text="have been saved")).to_be_visible()
    expect(page.get_by_label("One daily summary")).to_be_checked()
    expect(page.get_by_label("Data left (%)")).to_have_value("25")
    # Credit is shown and typed as money, not in pence.
    expect(page.get_by_label("Credit below (GBP)")).to_have_value(re.compile(r"^\d+\.\d\d$"))
    expect(page.get_by_label("Usage and low balance: Email")).not_to_be_checked()
    check_page(page, live_server, requests_seen)
    page.get_by_label("Usage and low balance: Email").check()  # as it was, for other tests
    page.get_by_label("As it happens").check()
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(re.compile(r".*saved=1$"))


@pytest.mark.spec("SUP-1", "LIM-1", "MOB-1")
@pytest.mark.parametrize("viewport", ["phone", "desktop"], indirect=True)
def test_support_page_taps_to_call_and_quotes_the_customer_id(
    live_server, new_page, viewport, requests_seen
):
    page = signed_in(new_page, live_server, "alice@example.com", viewport)
    page.goto(live_server.url + "/")
    page.get_by_role("contentinfo").get_by_role("link", name="Help and support").click()
    page.wait_for_url(live_server.url + "/support")
    expect(page.locator("[data-customer-number]")).to_have_text("C-100001")
    call = page.get_by_role("main").locator('a[href^="tel:"]')
    assert re.fullmatch(r"tel:\+\d+", call.get_attribute("href"))
    assert call.bounding_box()["height"] >= 24
    expect(page.get_by_role("main").locator('a[href^="mailto:"]')).to_be_visible()
    expect(page.locator("#staff-only li").first).to_be_visible()
    # The footer's number is a tap-to-call link on every page, and big enough for a thumb.
    footer_call = page.get_by_role("contentinfo").locator('a[href^="tel:"]')
    assert footer_call.bounding_box()["height"] >= 44
    check_page(page, live_server, requests_seen)
