"""Staff and impersonation (ACC-2, IMP-1..5): staff API, one-time link, banner, audit, limits."""

from datetime import timedelta

import pytest
import time_machine

from engine.db import utcnow
from engine.models import AuditEvent, Contact, StaffUser
from engine.security import hash_password
from engine.testing import DEMO_PASSWORD, Client, problem
from identity_support import core_demo, deliveries, signed_in, user  # noqa: F401
from plugins.staff.models import Impersonation


def staff_client(app, email="agent@example.com"):
    token = Client(app).login(email, staff=True)["token"]
    return Client(app, headers={"Authorization": f"Bearer {token}"})


def carol_id():
    return Contact.get(Contact.email == "carol@example.com").id


def start(staff, contact_id=None, reason="Customer called about a bill"):
    return staff.post(
        "/api/v1/staff/impersonations",
        json={"contact_id": contact_id or carol_id(), "reason": reason},
    )


def open_portal(app, url):
    browser = Client(app)
    answer = browser.get(url.replace("http://portal.test", ""))
    return browser, answer


@pytest.mark.spec("ACC-2")
def test_staff_api_lists_and_reads_customers(core_demo):
    staff = staff_client(core_demo)
    assert staff.get("/api/v1/staff/me").json["permissions"] == ["can_impersonate"]
    found = staff.get("/api/v1/staff/customers?q=bob").json["items"]
    assert [c["number"] for c in found] == ["C-100002"]
    bob_id = found[0]["id"]
    assert staff.get(f"/api/v1/staff/customers/{bob_id}").json["name"] == "Bob's Bikes Ltd"
    contacts = staff.get(f"/api/v1/staff/customers/{bob_id}/contacts").json["items"]
    assert [(c["email"], c["has_login"]) for c in contacts] == [
        ("bob@example.com", True),
        ("carol@example.com", True),
    ]
    assert len(staff.get(f"/api/v1/staff/customers/{bob_id}/sites").json["items"]) == 2
    assert staff.get(f"/api/v1/staff/customers/{bob_id}/services").json["items"] == []
    assert staff.get("/api/v1/staff/customers/999999").status_code == 404
    assert Client(core_demo).get("/api/v1/staff/customers").status_code == 401


@pytest.mark.spec("IMP-2")
def test_impersonation_needs_can_impersonate_or_admin(core_demo):
    StaffUser.create(
        email="viewer@example.com",
        name="Vic Viewer",
        permissions="",
        password_hash=hash_password(DEMO_PASSWORD),
    )
    viewer = staff_client(core_demo, "viewer@example.com")
    refused = start(viewer)
    # The route declares can_impersonate (SEC-5): refused before the body is read.
    assert refused.status_code == 403 and problem(refused)["type"] == "/problems/forbidden"
    assert Impersonation.select().count() == 0
    assert start(staff_client(core_demo, "admin@example.com")).status_code == 201


@pytest.mark.spec("IMP-1", "IMP-4")
def test_the_one_time_link_opens_the_customers_portal_with_a_banner(core_demo):
    made = start(staff_client(core_demo))
    assert made.status_code == 201 and made.json["status"] == "pending"
    browser, answer = open_portal(core_demo, made.json["url"])
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    me = browser.get("/api/v1/me").json
    assert me["email"] == "carol@example.com" and me["impersonated"]
    assert me["impersonator"] == "Sam Support"
    for path in ("/", "/account", "/account/activity", "/support"):
        assert 'class="impersonation-banner"' in browser.get(path).text, path
    _, again = open_portal(core_demo, made.json["url"])
    assert again.status_code == 410  # the link works once
    assert (
        'class="impersonation-banner"'
        not in signed_in(core_demo, "carol@example.com").get("/account").text
    )


@pytest.mark.spec("IMP-1")
def test_an_unopened_link_expires_after_two_minutes(core_demo):
    with time_machine.travel(utcnow(), tick=False) as clock:
        made = start(staff_client(core_demo))
        clock.shift(timedelta(minutes=2, seconds=1))
        _, answer = open_portal(core_demo, made.json["url"])
    assert answer.status_code == 410


@pytest.mark.spec("IMP-3", "ACCT-5")
def test_every_action_is_audited_with_both_people_and_shown_to_the_customer(core_demo):
    made = start(staff_client(core_demo), reason="Fixing the phone number")
    browser, _ = open_portal(core_demo, made.json["url"])
    assert browser.post("/account/edit/phone", form={"phone": "07700 900246"}).status_code == 303
    carol, agent = user("carol@example.com"), StaffUser.get(StaffUser.email == "agent@example.com")
    change = AuditEvent.get(AuditEvent.action == "account.updated")
    assert (change.user_id, change.staff_id, change.impersonated) == (carol.id, agent.id, True)
    action = AuditEvent.get(AuditEvent.action == "impersonation.action")
    assert action.target == "/account/edit/phone" and action.staff_id == agent.id
    log = signed_in(core_demo, "carol@example.com").get("/api/v1/account/activity").json["items"]
    started = next(e for e in log if e["action"] == "impersonation.started")
    assert (
        started["data"]["reason"] == "Fixing the phone number" and started["staff"] == "Sam Support"
    )
    updated = next(e for e in log if e["action"] == "account.updated")
    assert updated["impersonated"] and "Sam Support" in updated["actor"]
    assert deliveries("impersonation_started", "carol@example.com")


@pytest.mark.spec("IMP-5")
def test_credentials_cannot_change_during_impersonation(core_demo):
    made = start(
        staff_client(core_demo), contact_id=Contact.get(Contact.email == "bob@example.com").id
    )
    browser, _ = open_portal(core_demo, made.json["url"])
    for path, body in [
        (
            "/api/v1/account/password",
            {"current_password": DEMO_PASSWORD, "new_password": "Taken-Over-2031!"},
        ),
        ("/api/v1/account/email", {"email": "evil@example.com", "password": DEMO_PASSWORD}),
        ("/api/v1/account/2fa/setup", None),
        (
            "/api/v1/account/api-keys",
            {
                "name": "x",
                "access": "read_write",
                "expires_at": (utcnow() + timedelta(days=3)).isoformat(),
            },
        ),
    ]:
        answer = browser.post(path, json=body)
        assert answer.status_code == 403, path
        assert problem(answer)["type"] == "/problems/impersonation-forbidden"
    page = browser.post(
        "/account/password",
        form={
            "current_password": DEMO_PASSWORD,
            "new_password": "Taken-Over-2031!",
            "new_password_confirm": "Taken-Over-2031!",
        },
    )
    assert "while impersonating" in page.text
    assert "while impersonating" in browser.get("/account/password").text
    Client(core_demo).login("bob@example.com")  # the password is untouched


@pytest.mark.spec("IMP-4")
def test_impersonation_times_out_after_a_short_idle_spell(core_demo):
    with time_machine.travel(utcnow(), tick=False) as clock:
        made = start(staff_client(core_demo))
        browser, _ = open_portal(core_demo, made.json["url"])
        clock.shift(timedelta(minutes=14, seconds=59))
        assert browser.get("/api/v1/me").status_code == 200
        clock.shift(timedelta(minutes=15))
        assert browser.get("/api/v1/me").status_code == 401


@pytest.mark.spec("IMP-4", "IMP-3")
def test_ending_from_the_banner_or_the_staff_api(core_demo):
    staff = staff_client(core_demo)
    browser, _ = open_portal(core_demo, start(staff).json["url"])
    ended = browser.post("/impersonation/end", form={})
    assert ended.headers["location"] == "/staff"
    assert browser.get("/api/v1/me").status_code == 401
    made = start(staff)
    other, _ = open_portal(core_demo, made.json["url"])
    assert staff.get("/api/v1/staff/impersonations").json["items"][0]["status"] == "active"
    assert staff.delete(f"/api/v1/staff/impersonations/{made.json['id']}").json["status"] == "ended"
    assert other.get("/api/v1/me").status_code == 401
    assert AuditEvent.select().where(AuditEvent.action == "impersonation.ended").count() == 2


@pytest.mark.spec("IMP-1", "IMP-4")
def test_staff_console_log_in_as_user_needs_a_reason(core_demo):
    console = Client(core_demo)
    assert console.get("/staff").headers["location"].startswith("/staff/login")
    signed = console.post(
        "/staff/login", form={"email": "agent@example.com", "password": DEMO_PASSWORD}
    )
    assert signed.headers["location"] == "/staff"
    assert "C-100002" in console.get("/staff?q=Bikes").text
    bob_id = Contact.get(Contact.email == "bob@example.com").customer_id
    page = console.get(f"/staff/customers/{bob_id}")
    assert "Log in as user" in page.text and 'target="_blank"' in page.text
    no_reason = console.post(
        f"/staff/customers/{bob_id}/impersonate", form={"contact_id": str(carol_id()), "reason": ""}
    )
    assert no_reason.status_code == 422 and "Give a reason" in no_reason.text
    go = console.post(
        f"/staff/customers/{bob_id}/impersonate",
        form={"contact_id": str(carol_id()), "reason": "Checking her invoices"},
    )
    assert go.status_code == 303 and go.headers["location"].startswith("/impersonate/")
    assert console.post("/staff/logout", form={}).headers["location"] == "/staff/login"
    assert console.get("/staff").status_code == 303


@pytest.mark.spec("IMP-2")
def test_a_deactivated_staff_member_loses_the_impersonation_at_once(core_demo):
    browser, _ = open_portal(core_demo, start(staff_client(core_demo)).json["url"])
    assert browser.get("/api/v1/me").status_code == 200
    StaffUser.update(is_active=False).where(StaffUser.email == "agent@example.com").execute()
    assert browser.get("/api/v1/me").status_code == 401
