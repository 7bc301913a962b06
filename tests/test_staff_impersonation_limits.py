"""What staff cannot do while impersonating, and when impersonation ends (IMP-6).

Found by the outside probe (issue 14): an impersonating staff member could register a web
push subscription for the customer (and so receive what the customer is told), and an
impersonation outlived the staff member's sign-out and lost permission. Each test fails on
the code before the fix.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from billing_helpers import customer, invoice_for, sandbox_card, staff
from https_service import PUBLIC
from engine.db import utcnow
from engine.models import AuditEvent, StaffUser
from engine.testing import DEMO_PASSWORD, Client, problem, sql_seen
from plugins.billing.models import Invoice, Payment
from plugins.identity import apikeys
from plugins.identity.models import Session
from plugins.sandbox.provider import token_for
from plugins.topups.models import AutoTopup
from plugins.webpush.models import PushSubscription
from test_webpush import b64, browser_keys, vapid  # noqa: F401
from topups_helpers import addon_catalogue, service_of, topup_catalogue

FORBIDDEN = "/problems/impersonation-forbidden"


@pytest.fixture
def world(make_app, vapid):  # noqa: F811
    """Bob's Bikes (a business: API access) with a saved card, an open invoice, a prepaid
    line, a broadband line and the catalogues; Sam, a support agent who may impersonate."""

    def build(**settings):
        app = make_app(webpush=vapid, **settings)
        c, user = customer("bob")
        c.kind = "business"
        c.save()
        agent = staff("can_impersonate", "sam")
        return {
            "app": app,
            "customer": c,
            "user": user,
            "agent": agent,
            "card": sandbox_card(app, c.id),
            "invoice": invoice_for(app, c.id, 1000),
            "prepaid": service_of(c, "prepaid"),
            "broadband": service_of(c, "broadband"),
            "topups": topup_catalogue(app),
            "addons": addon_catalogue(app),
        }

    return build


def staff_api(app, email: str) -> Client:
    token = Client(app).login(email, staff=True)["token"]
    return Client(app, headers={"Authorization": f"Bearer {token}"})


def impersonate(app, user, console: Client) -> Client:
    """The customer's portal as the agent sees it after "Log in as user" (a real session)."""
    made = console.post(
        "/api/v1/staff/impersonations",
        json={"contact_id": user.contact_id, "reason": "Customer called"},
    )
    assert made.status_code == 201, made.text
    browser = Client(app)
    assert browser.get(made.json["url"].replace("http://portal.test", "")).status_code == 303
    assert browser.get("/api/v1/me").json["impersonated"]
    return browser


@pytest.fixture(autouse=True)
def push_host(dns):
    """The push service's name resolves to a public address (SEC-2 checks it at registration)."""
    dns.table["push.example.net"] = [PUBLIC]


def subscription_body(name: str) -> dict:
    _, public, auth = browser_keys()
    return {
        "endpoint": f"https://push.example.net/{name}",
        "keys": {"p256dh": public, "auth": b64(auth)},
    }


@pytest.mark.spec("IMP-6")
def test_imp6_no_push_subscription_under_impersonation_or_with_an_api_key(world):
    w = world()
    app, user = w["app"], w["user"]
    browser = impersonate(app, user, staff_api(app, "sam@operator.example"))
    refused = browser.post("/api/v1/push/subscriptions", json=subscription_body("staff"))
    assert refused.status_code == 403, refused.text
    body = problem(refused)
    assert body["type"] == FORBIDDEN and "impersonating" in body["detail"]
    # The portal says why, instead of offering the switch.
    page = browser.get("/account/notifications", headers={"Accept": "text/html"}).text
    assert "data-push-refused" in page and "data-push-on" not in page
    assert "cannot turn on push notifications" in page

    key, _ = apikeys.create(
        w["customer"].id, user.id, "Integration", "read_write", utcnow() + timedelta(days=30)
    )
    with_key = Client(app, headers={"Authorization": f"Bearer {key}"})
    refused = with_key.post("/api/v1/push/subscriptions", json=subscription_body("key"))
    assert refused.status_code == 403 and problem(refused)["type"] == "/problems/api-key-forbidden"
    assert PushSubscription.select().count() == 0

    # The customer, in their own session, can.
    own = Client(app)
    own.login(user.email)
    assert own.post("/api/v1/push/subscriptions", json=subscription_body("own")).status_code == 201
    assert "data-push-on" in own.get("/account/notifications", headers={"Accept": "text/html"}).text


@pytest.mark.spec("IMP-6", "IMP-5")
def test_imp6_no_api_key_under_impersonation_and_the_page_says_why(world):
    w = world()
    app = w["app"]
    browser = impersonate(app, w["user"], staff_api(app, "sam@operator.example"))
    made = browser.post(
        "/api/v1/account/api-keys",
        json={
            "name": "x",
            "access": "read_write",
            "expires_at": (utcnow() + timedelta(days=3)).isoformat(),
        },
    )
    assert made.status_code == 403 and problem(made)["type"] == FORBIDDEN
    page = browser.get("/account/api-keys", headers={"Accept": "text/html"}).text
    assert "while impersonating" in page


@pytest.mark.spec("IMP-6")
def test_imp6_no_payment_with_the_customers_saved_cards_under_impersonation(world):
    w = world()
    app, card, invoice = w["app"], w["card"], w["invoice"]
    browser = impersonate(app, w["user"], staff_api(app, "sam@operator.example"))
    html = {"Accept": "text/html"}
    tries = {
        "invoice, named card": browser.post(
            f"/api/v1/invoices/{invoice.id}/pay", json={"payment_method_id": card.id}
        ),
        "invoice, default card": browser.post(f"/api/v1/invoices/{invoice.id}/pay", json={}),
        "top-up": browser.post(
            f"/api/v1/services/{w['prepaid'].id}/topups",
            json={"product_id": w["topups"]["prepaid-credit-10"].id},
        ),
        "add-on": browser.post(
            f"/api/v1/services/{w['broadband'].id}/addons",
            json={"product_id": w["addons"]["broadband-router-wifi6"].id},
        ),
        "auto top-up": browser.put(
            f"/api/v1/services/{w['prepaid'].id}/auto-topup",
            json={"enabled": True, "threshold": 500, "amount": 1000},
        ),
        "pay page": browser.post(
            f"/billing/invoices/{invoice.id}/pay",
            headers=html,
            form={"idempotency_key": uuid.uuid4().hex, "method": str(card.id)},
        ),
    }
    for what, answer in tries.items():
        assert answer.status_code == 403, (what, answer.status_code, answer.text[:300])
        if what != "pay page":
            body = problem(answer)
            assert body["type"] == FORBIDDEN and "saved cards" in body["detail"], what
    assert Payment.select().count() == 0 and AutoTopup.select().count() == 0
    assert Invoice.get_by_id(invoice.id).status != "paid"

    # The pay page shows the saved card disabled, says why, and offers a new card instead.
    page = browser.get(f"/billing/invoices/{invoice.id}/pay", headers=html).text
    assert "data-cards-refused" in page and f'value="{card.id}" disabled' in page
    assert 'value="new" data-new-card checked' in page
    auto = browser.get(f"/services/{w['prepaid'].id}/auto-topup", headers=html).text
    assert "data-auto-refused" in auto and "data-auto-form" not in auto

    # A card the customer reads out over the phone still pays.
    setup_ref = page.split('name="setup_ref" value="', 1)[1].split('"', 1)[0]
    paid = browser.post(
        f"/billing/invoices/{invoice.id}/pay",
        headers=html,
        form={
            "idempotency_key": uuid.uuid4().hex,
            "method": "new",
            "setup_ref": setup_ref,
            "token": token_for("4242424242424242", 12, 2040),
        },
    )
    assert paid.status_code == 303 and paid.headers["location"].endswith("?done=paid")


@pytest.mark.spec("IMP-6")
def test_imp6_the_operator_may_allow_saved_card_payments_under_impersonation(world):
    w = world(security={"impersonation_saved_card_payments": True})
    app, invoice = w["app"], w["invoice"]
    browser = impersonate(app, w["user"], staff_api(app, "sam@operator.example"))
    page = browser.get(f"/billing/invoices/{invoice.id}/pay", headers={"Accept": "text/html"})
    assert "data-cards-refused" not in page.text
    paid = browser.post(f"/api/v1/invoices/{invoice.id}/pay", json={})
    assert paid.status_code == 200, paid.text
    assert Invoice.get_by_id(invoice.id).status == "paid"
    payment = Payment.get()
    assert payment.method_id == w["card"].id
    # IMP-3: on the record with both people.
    pay = AuditEvent.get(AuditEvent.action == "invoice.pay")
    assert pay.impersonated and pay.staff_id == w["agent"].id


def ended_by(reason_key: str, value: str) -> list[AuditEvent]:
    return [
        e
        for e in AuditEvent.select().where(AuditEvent.action == "impersonation.ended")
        if e.data.get(reason_key) == value
    ]


@pytest.mark.spec("IMP-6")
def test_imp6_impersonation_ends_when_the_staff_member_signs_out_of_the_api(world):
    w = world()
    app, user = w["app"], w["user"]
    console = staff_api(app, "sam@operator.example")
    browser = impersonate(app, user, console)
    unopened = console.post(
        "/api/v1/staff/impersonations", json={"contact_id": user.contact_id, "reason": "Later"}
    ).json["url"]
    assert console.post("/api/v1/staff/auth/logout").status_code == 204
    assert browser.get("/api/v1/me").status_code == 401
    assert Client(app).get(unopened.replace("http://portal.test", "")).status_code == 410
    [event] = ended_by("by", "staff_signed_out")
    assert event.user_id == user.id and event.staff_id == w["agent"].id


@pytest.mark.spec("IMP-6")
def test_imp6_impersonation_ends_when_the_staff_member_signs_out_of_the_console(world):
    w = world()
    app, user = w["app"], w["user"]
    console = Client(app, headers={"Accept": "text/html"})
    assert (
        console.post(
            "/staff/login", form={"email": "sam@operator.example", "password": DEMO_PASSWORD}
        ).status_code
        == 303
    )
    go = console.post(
        f"/staff/customers/{w['customer'].id}/impersonate",
        form={"contact_id": str(user.contact_id), "reason": "Checking a bill"},
    )
    assert go.status_code == 303
    browser = Client(app)
    assert browser.get(go.headers["location"]).status_code == 303
    assert browser.get("/api/v1/me").status_code == 200
    assert console.post("/staff/logout", form={}).headers["location"] == "/staff/login"
    assert browser.get("/api/v1/me").status_code == 401
    assert len(ended_by("by", "staff_signed_out")) == 1


@pytest.mark.spec("IMP-6", "IMP-2")
@pytest.mark.parametrize(
    "change", [{"permissions": ""}, {"permissions": "billing"}, {"is_active": False}]
)
def test_imp6_impersonation_ends_when_the_staff_member_loses_the_right(world, change):
    w = world()
    app = w["app"]
    browser = impersonate(app, w["user"], staff_api(app, "sam@operator.example"))
    StaffUser.update(**change).where(StaffUser.id == w["agent"].id).execute()
    assert browser.get("/api/v1/me").status_code == 401
    assert Session.get(Session.kind == "impersonation").revoked_at is not None
    [event] = ended_by("reason", "staff_not_allowed")
    assert (event.user_id, event.staff_id) == (w["user"].id, w["agent"].id)
    # Given back, the right does not revive the visit: it ended.
    StaffUser.update(permissions="can_impersonate", is_active=True).where(
        StaffUser.id == w["agent"].id
    ).execute()
    assert browser.get("/api/v1/me").status_code == 401


@pytest.mark.spec("IMP-6")
def test_imp6_the_check_costs_no_query_of_its_own(world):
    """The staff member's account is read in the session's own query (the hot path)."""
    w = world()
    app = w["app"]
    browser = impersonate(app, w["user"], staff_api(app, "sam@operator.example"))
    own = Client(app)
    own.login(w["user"].email)

    def queries(client) -> list[str]:
        client.get("/api/v1/account/2fa")  # warm: prepared statements, the idle clock
        with sql_seen() as seen:
            assert client.get("/api/v1/account/2fa").status_code == 200
        return seen

    assert len(queries(browser)) == len(queries(own))
