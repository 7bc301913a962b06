"""Password reset and "sign out everywhere" end every session and forget every browser (SEC-4);
only the account holder may end sessions.

Found by the outside probe (issue 14): a push subscription registered for a customer survived
the password reset (and the end of the impersonation that registered it), and an impersonating
staff member could sign the customer out of their own devices. Each test fails on the code
before the fix.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.db import utcnow
from engine.models import AuditEvent, User
from engine.testing import DEMO_PASSWORD, Client, problem, seed_people
from identity_support import NEW_PASSWORD, reset_link
from plugins.identity import reset
from plugins.identity.models import ApiKey, Session
from plugins.webpush.models import PushSubscription
from test_staff_impersonation_limits import (  # noqa: F401 - push_host is a fixture
    impersonate,
    push_host,
    staff_api,
    subscription_body,
)
from test_webpush import vapid  # noqa: F401

ME = "/api/v1/me"


@pytest.fixture
def world(make_app, vapid):  # noqa: F811
    """Bob (a business: API keys) signed in on a phone and a laptop, with a push subscription,
    an API key, and an agent impersonating him; Carol, of the same customer, signed in too."""

    def build(**settings):
        app = make_app(webpush=vapid, **settings)
        seed_people(app)
        phone, laptop, carol = Client(app), Client(app), Client(app)
        phone.login("bob@example.com")
        token = laptop.login("bob@example.com")["token"]
        laptop = Client(app, headers={"Authorization": f"Bearer {token}"})
        carol.login("carol@example.com")
        assert (
            phone.post(
                "/api/v1/push/subscriptions", json=subscription_body("bob-phone")
            ).status_code
            == 201
        )
        assert (
            carol.post(
                "/api/v1/push/subscriptions", json=subscription_body("carol-phone")
            ).status_code
            == 201
        )
        key = phone.post(
            "/api/v1/account/api-keys",
            json={
                "name": "Accounts sync",
                "access": "read_write",
                "expires_at": (utcnow() + timedelta(days=30)).isoformat(),
            },
        ).json["key"]
        staff = impersonate(
            app, User.get(User.email == "bob@example.com"), staff_api(app, "agent@example.com")
        )
        return {
            "app": app,
            "phone": phone,
            "laptop": laptop,
            "carol": carol,
            "staff": staff,
            "key": Client(app, headers={"Authorization": f"Bearer {key}"}),
            "bob": User.get(User.email == "bob@example.com"),
        }

    return build


def pushes_of(email: str) -> int:
    return PushSubscription.select().join(User).where(User.email == email).count()


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.select().where(AuditEvent.action == action).order_by(AuditEvent.id))


def reset_bob(app) -> None:
    reset.send_reset_link(app, "bob@example.com")
    token = reset_link(address="bob@example.com").split("token=")[1]
    done = Client(app).post(
        "/api/v1/auth/password/reset", json={"token": token, "password": NEW_PASSWORD}
    )
    assert done.status_code == 200, done.text


@pytest.mark.spec("SEC-4", "PWD-1")
def test_sec4_a_password_reset_ends_every_session_and_forgets_every_browser(world):
    w = world()
    reset_bob(w["app"])
    for device in ("phone", "laptop", "staff"):
        assert w[device].get(ME).status_code == 401, device
    assert pushes_of("bob@example.com") == 0
    # Carol is another login of the same customer: not hers to lose.
    assert w["carol"].get(ME).status_code == 200 and pushes_of("carol@example.com") == 1
    # API keys stay by default (security.reset_revokes_api_keys = false).
    assert w["key"].get(ME).status_code == 200
    [done] = events("password.reset")
    assert done.data == {"sessions_ended": 3, "api_keys_revoked": 0}
    [removed] = events("push.subscriptions_removed")
    assert removed.data == {"count": 1, "reason": "password_reset"}
    assert removed.user_id == w["bob"].id and removed.customer_id == w["bob"].contact.customer_id


@pytest.mark.spec("SEC-4")
def test_sec4_a_reset_revokes_api_keys_when_the_operator_says_so(world):
    w = world(security={"reset_revokes_api_keys": True})
    reset_bob(w["app"])
    gone = w["key"].get(ME)
    assert gone.status_code == 401 and problem(gone)["type"] == "/problems/revoked-key"
    [revoked] = events("api_key.revoked")
    assert revoked.data["reason"] == "password_reset" and revoked.user_id == w["bob"].id
    assert events("password.reset")[0].data["api_keys_revoked"] == 1
    assert ApiKey.get().revoked_at is not None


@pytest.mark.spec("SEC-4")
def test_sec4_push_may_outlive_a_reset_when_the_operator_says_so(world):
    w = world(security={"sign_out_removes_push": False})
    reset_bob(w["app"])
    assert w["phone"].get(ME).status_code == 401
    assert pushes_of("bob@example.com") == 1 and events("push.subscriptions_removed") == []


@pytest.mark.spec("SEC-4")
def test_sec4_sign_out_everywhere_ends_the_other_sessions_and_forgets_every_browser(world):
    w = world()
    page = w["phone"].post("/account/sessions/end-others", form={}, headers={"Accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"].endswith("notice=ended")
    assert w["phone"].get(ME).status_code == 200  # the device that asked stays signed in
    assert w["laptop"].get(ME).status_code == 401 and w["staff"].get(ME).status_code == 401
    assert pushes_of("bob@example.com") == 0 and pushes_of("carol@example.com") == 1
    assert events("sessions.ended_others")[0].data == {"count": 2}
    assert events("push.subscriptions_removed")[0].data == {
        "count": 1,
        "reason": "sign_out_everywhere",
    }


@pytest.mark.spec("SEC-4", "ACCT-4")
def test_sec4_a_password_change_that_signs_out_the_others_forgets_every_browser(world):
    w = world()
    changed = w["phone"].post(
        "/api/v1/account/password",
        json={
            "current_password": DEMO_PASSWORD,
            "new_password": NEW_PASSWORD,
            "end_other_sessions": True,
        },
    )
    assert changed.status_code == 200, changed.text
    assert w["laptop"].get(ME).status_code == 401 and w["staff"].get(ME).status_code == 401
    assert pushes_of("bob@example.com") == 0
    assert events("push.subscriptions_removed")[0].data["reason"] == "password_change"


@pytest.mark.spec("SEC-4", "IMP-6")
def test_sec4_only_the_account_holder_ends_sessions(world):
    w = world()
    staff, key = w["staff"], w["key"]
    laptop = (
        Session.select()
        .where((Session.kind == "customer") & (Session.user == w["bob"].id))
        .order_by(Session.id.desc())
        .first()
    )  # signed in after the phone
    tries = [
        ("impersonation-forbidden", staff.post("/account/sessions/end-others", form={})),
        ("impersonation-forbidden", staff.post("/api/v1/account/sessions/end-others")),
        ("impersonation-forbidden", staff.delete(f"/api/v1/account/sessions/{laptop.id}")),
        ("api-key-forbidden", key.post("/api/v1/account/sessions/end-others")),
        ("api-key-forbidden", key.delete(f"/api/v1/account/sessions/{laptop.id}")),
    ]
    for kind, answer in tries:
        assert answer.status_code == 403, answer.text[:300]
        if answer.headers["content-type"].startswith("application/problem+json"):
            assert problem(answer)["type"] == f"/problems/{kind}"
    for device in ("phone", "laptop", "staff"):
        assert w[device].get(ME).status_code == 200, device
    assert pushes_of("bob@example.com") == 1
    assert events("sessions.ended_others") == [] and events("session.revoked") == []
