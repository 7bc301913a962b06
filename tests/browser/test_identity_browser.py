"""Sign-in, 2FA set-up, password reset by email, and the impersonation banner, in Chromium."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import expect

from portal_checks import body_text, sign_in, wait_for_mail

pytestmark = pytest.mark.browser
NEW_PASSWORD = "Browser-Reset-2031!"


@pytest.mark.spec("ACC-1")
@pytest.mark.parametrize("viewport", ["phone", "desktop"], indirect=True)
def test_sign_in_and_out(live_server, page, viewport):
    page.goto(live_server.url + "/account")
    assert page.url.startswith(live_server.url + "/login?next=")
    page.get_by_label("Email address").fill("alice@example.com")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("The email or password is not right.")
    page.get_by_label("Password").fill(live_server.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/account")
    expect(page.get_by_text("C-100001").first).to_be_visible()
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(re.compile(r".*/login\?notice=signed-out"))
    page.goto(live_server.url + "/account")
    assert "/login" in page.url


@pytest.mark.spec("ACCT-6", "ACC-1")
def test_two_factor_set_up_then_sign_in_with_a_code(live_server, page):
    sign_in(page, live_server, "bob@example.com")
    page.goto(live_server.url + "/account/security")
    page.get_by_role("link", name="Set up two-step verification").click()
    qr = page.get_by_alt_text("QR code for your authenticator app")
    expect(qr).to_be_visible()
    assert qr.bounding_box()["width"] >= 150
    secret = page.locator("code.manual-key").get_attribute("data-secret")
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.locator("ul.backup-codes code")).to_have_count(10)
    page.get_by_role("link", name="I have saved them").click()
    expect(page.locator("#two-factor").get_by_text("On", exact=True)).to_be_visible()
    page.get_by_role("button", name="Sign out", exact=True).click()

    sign_in(page, live_server, "bob@example.com", home=False)
    page.wait_for_url(live_server.url + "/login/2fa")
    # The next 30-second step: the one just used to turn 2FA on would be a replay.
    page.get_by_label("Code").fill(pyotp.TOTP(secret).at(int(time.time()) + 30))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(live_server.url + "/")
    expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible()


@pytest.mark.spec("PWD-1")
def test_password_reset_with_the_emailed_link(live_server, page):
    page.goto(live_server.url + "/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email address").fill("carol@example.com")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("status").first).to_contain_text("If an account uses this email")
    message = wait_for_mail(live_server, "Reset your password", "carol@example.com")
    link = re.search(r"https?://\S+/password/reset\?token=\S+", body_text(message)).group(0)
    page.goto(live_server.url + "/password/reset?" + link.split("?", 1)[1])
    page.get_by_label("New password", exact=True).fill("password1")
    page.get_by_label("New password again").fill("password1")
    page.get_by_role("button", name="Save the new password").click()
    expect(page.locator("#f-password-error")).to_contain_text("too common")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save the new password").click()
    page.wait_for_url(re.compile(r".*/login\?notice=reset"))
    sign_in(page, live_server, "carol@example.com", NEW_PASSWORD)
    page.wait_for_url(live_server.url + "/")
    page.goto(live_server.url + "/password/reset?" + link.split("?", 1)[1])
    expect(page.get_by_role("alert")).to_contain_text("expired or was already used")


@pytest.mark.spec("IMP-1", "IMP-4")
def test_staff_log_in_as_user_shows_the_banner_on_every_page(live_server, page):
    page.goto(live_server.url + "/staff")
    page.get_by_label("Email address").fill("agent@example.com")
    page.get_by_label("Password").fill(live_server.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/staff")
    page.get_by_label("Find a customer").fill("Alice")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="C-100001").click()
    contact = page.locator("li[data-contact]").filter(has_text="alice@example.com")
    contact.get_by_label("Reason (shown to the customer)").fill("Customer asked for help")
    with page.context.expect_page() as opened:
        contact.get_by_role("button", name="Log in as user").click()
    portal = opened.value
    portal.wait_for_load_state()
    assert portal.url == live_server.url + "/"
    for path in ("/", "/account", "/account/activity"):
        portal.goto(live_server.url + path)
        expect(portal.locator(".impersonation-banner")).to_contain_text("acting as this customer")
    expect(portal.locator(".activity")).to_contain_text("Customer asked for help")
    portal.get_by_role("button", name="End session").click()
    portal.wait_for_url(live_server.url + "/staff")
    portal.goto(live_server.url + "/account")
    assert "/login" in portal.url
