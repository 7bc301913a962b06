"""Web push from the portal's notifications page, end to end (MOB-3, NOT-4).

The live portal runs with VAPID keys (the webpush plugin configured). Chromium here cannot
reach a browser vendor's push service, so the page's ``PushManager`` answers with a
subscription whose endpoint is a push service on loopback (tests/https_service.py), holding
keys this test owns: everything else is real — the page's script, the subscription API, the
preferences form, a payment, the notice, the worker and the encrypted push.
"""

from __future__ import annotations

import json
import re
import time

import http_ece
import pytest
from click.testing import CliRunner
from playwright.sync_api import expect

from engine.cli import cli
from portal_checks import api_get, check_page, signed_in
from https_service import HTTPSService
from test_webpush import b64, browser_keys

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def push_service(tmp_path_factory):
    """A push service over real HTTPS on loopback (SEC-2: push endpoints are https)."""
    service = HTTPSService(tmp_path_factory.mktemp("push"))
    yield service
    service.close()


@pytest.fixture(scope="module")
def live_server_env(tmp_path_factory, push_service) -> dict:
    result = CliRunner().invoke(
        cli,
        ["webpush", "keys"],
        env={"PORTICO_DEMO": "true", "PORTICO_DATA_DIR": str(tmp_path_factory.mktemp("vapid"))},
    )
    assert result.exit_code == 0, result.output
    keys = dict(line.split(" = ") for line in result.output.splitlines() if " = " in line)
    return {
        "PORTICO_WEBPUSH_VAPID_PRIVATE_KEY": keys["vapid_private_key"].split('"')[1],
        "PORTICO_WEBPUSH_VAPID_PUBLIC_KEY": keys["vapid_public_key"].split('"')[1],
        # The test's push service is on loopback, with a certificate of its own CA.
        "PORTICO_OUTBOUND_UNSAFE_ALLOW_LOOPBACK_FOR_TESTS": "true",
        "REQUESTS_CA_BUNDLE": str(push_service.ca_file),
    }


PUSH_MANAGER = """
(({endpoint, p256dh, auth}) => {
  const subscription = {
    endpoint, expirationTime: null,
    toJSON: () => ({endpoint, expirationTime: null, keys: {p256dh, auth}}),
    unsubscribe: () => { localStorage.removeItem("test-push"); return Promise.resolve(true); },
  };
  PushManager.prototype.subscribe = function (options) {
    if (!options.userVisibleOnly || options.applicationServerKey.byteLength !== 65)
      return Promise.reject(new Error("bad subscribe options"));
    localStorage.setItem("test-push", "1");
    return Promise.resolve(subscription);
  };
  PushManager.prototype.getSubscription = function () {
    return Promise.resolve(localStorage.getItem("test-push") ? subscription : null);
  };
})(%s);
"""


def wait_for_push(push_service, count: int, timeout: float = 30.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(push_service.received) >= count:
            return push_service.received
        time.sleep(0.2)
    raise AssertionError(f"the push service got {len(push_service.received)} pushes")


@pytest.mark.spec("MOB-3", "NOT-4", "NOT-3")
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_turn_on_push_choose_it_for_bills_and_get_one(
    live_server, new_page, viewport, push_service, requests_seen
):
    private, p256dh, auth = browser_keys()
    endpoint = push_service.url + "alice-phone"
    page = signed_in(new_page, live_server, "alice@example.com", viewport)
    page.context.grant_permissions(["notifications"], origin=live_server.url)
    page.add_init_script(
        PUSH_MANAGER % json.dumps({"endpoint": endpoint, "p256dh": p256dh, "auth": b64(auth)})
    )

    page.goto(live_server.url + "/account/notifications")
    panel = page.get_by_role("region", name="Notifications on this device")
    state = panel.get_by_role("status")
    expect(state).to_have_text("Notifications are off for this device.")
    check_page(page, live_server, requests_seen)
    panel.get_by_role("button", name="Turn on for this device").click()
    expect(state).to_have_text("Notifications are on for this device.")
    expect(panel.get_by_role("button", name="Turn off for this device")).to_be_visible()
    mine = api_get(live_server, "alice@example.com", "/api/v1/push/subscriptions")["items"]
    assert [s["endpoint"] for s in mine] == [endpoint]

    # Push is now a channel on the preferences form: choose it for bills and payments.
    box = page.get_by_label("Bills and payments: Push")
    box.check()
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(re.compile(r".*/account/notifications\?saved=1$"))
    expect(page.get_by_label("Bills and payments: Push")).to_be_checked()
    expect(state).to_have_text("Notifications are on for this device.")

    # Pay a bill: the payment-received notice goes out as a push, encrypted for this browser.
    page.goto(live_server.url + "/billing")
    row = page.locator("tr[data-invoice]", has=page.get_by_role("link", name="Pay now")).first
    row.get_by_role("link", name="Pay now").click()
    page.get_by_label("A new card").check()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry month").fill("12")
    page.get_by_label("Expiry year").fill("2034")
    page.locator("[data-pay-button]").click()
    page.wait_for_url(re.compile(r".*/billing/invoices/\d+\?done=paid$"))
    headers, body = wait_for_push(push_service, 1)[-1]
    assert headers["authorization"].startswith("vapid t=")
    message = json.loads(
        http_ece.decrypt(body, private_key=private, auth_secret=auth, version="aes128gcm")
    )
    assert "Payment received" in message["title"] and message["url"].startswith("/")

    # And off again: the browser forgets the subscription, and so does the portal.
    page.goto(live_server.url + "/account/notifications")
    expect(state).to_have_text("Notifications are on for this device.")
    panel.get_by_role("button", name="Turn off for this device").click()
    expect(state).to_have_text("Notifications are off for this device.")
    assert api_get(live_server, "alice@example.com", "/api/v1/push/subscriptions")["items"] == []


@pytest.mark.spec("MOB-3")
def test_a_refused_permission_is_explained(live_server, new_page, push_service):
    page = signed_in(new_page, live_server, "bob@example.com", "desktop")
    # No permission granted: headless Chromium answers the request as a refusal.
    page.goto(live_server.url + "/account/notifications")
    panel = page.get_by_role("region", name="Notifications on this device")
    panel.get_by_role("button", name="Turn on for this device").click()
    expect(panel.get_by_role("status")).to_contain_text("blocks notifications")
    assert api_get(live_server, "bob@example.com", "/api/v1/push/subscriptions")["items"] == []


@pytest.mark.spec("SEC-4", "MOB-3")
def test_signing_out_everywhere_forgets_this_browser_and_the_switch_says_so(
    live_server, new_page, push_service
):
    _, p256dh, auth = browser_keys()
    endpoint = push_service.url + "bob-laptop"
    page = signed_in(new_page, live_server, "bob@example.com", "desktop")
    page.context.grant_permissions(["notifications"], origin=live_server.url)
    page.add_init_script(
        PUSH_MANAGER % json.dumps({"endpoint": endpoint, "p256dh": p256dh, "auth": b64(auth)})
    )
    page.goto(live_server.url + "/account/notifications")
    panel = page.get_by_role("region", name="Notifications on this device")
    state = panel.get_by_role("status")
    panel.get_by_role("button", name="Turn on for this device").click()
    expect(state).to_have_text("Notifications are on for this device.")

    page.goto(live_server.url + "/account/security")
    page.once("dialog", lambda d: d.accept())  # it asks first
    page.get_by_role("button", name="Sign out everywhere else").click()
    page.wait_for_url(re.compile(r".*/account/security\?notice=ended$"))
    assert api_get(live_server, "bob@example.com", "/api/v1/push/subscriptions")["items"] == []
    # The browser still holds its subscription; the portal no longer sends to it, and says so.
    page.goto(live_server.url + "/account/notifications")
    expect(state).to_have_text("Notifications are off for this device.")
    panel.get_by_role("button", name="Turn on for this device").click()
    expect(state).to_have_text("Notifications are on for this device.")
    mine = api_get(live_server, "bob@example.com", "/api/v1/push/subscriptions")["items"]
    assert [s["endpoint"] for s in mine] == [endpoint]
    panel.get_by_role("button", name="Turn off for this device").click()
    expect(state).to_have_text("Notifications are off for this device.")
    assert api_get(live_server, "bob@example.com", "/api/v1/push/subscriptions")["items"] == []
