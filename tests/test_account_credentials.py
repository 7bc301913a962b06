"""Email change by confirmation link (ACCT-1) and password change with the current one (ACCT-4)."""

from datetime import timedelta

import pytest
import time_machine

from engine.db import utcnow
from engine.models import Contact
from engine.testing import DEMO_PASSWORD, Client
from identity_support import (
    NEW_PASSWORD,
    core_demo,  # noqa: F401  (fixture)
    deliveries,
    link_in,
    reset_link,
    sent_mail,
    signed_in,
    text_of,
    user,
)


@pytest.mark.spec("ACCT-1")
def test_email_changes_only_when_the_new_address_confirms(core_demo):
    alice = signed_in(core_demo, "alice@example.com")
    form = alice.post(
        "/account/email", form={"email": "Alice.New@Example.com", "password": DEMO_PASSWORD}
    )
    assert form.headers["location"] == "/account?notice=email-sent"
    assert user("alice@example.com")  # unchanged until confirmed
    assert alice.get("/api/v1/account").json["pending_email"] == "alice.new@example.com"
    mails = {m["To"]: m for m in sent_mail(core_demo)}
    assert set(mails) == {"alice.new@example.com", "alice@example.com"}
    assert "alice.new@example.com" in text_of(mails["alice@example.com"])  # the notice to the old
    link = link_in(text_of(mails["alice.new@example.com"]), "/account/email/verify")
    confirm = alice.get(link)
    assert confirm.status_code == 200 and confirm.headers["Referrer-Policy"] == "no-referrer"
    done = alice.post("/account/email/verify", form={"token": link.split("token=")[1]})
    assert done.headers["location"] == "/account?notice=email"
    assert user("alice.new@example.com").email_verified_at is not None
    assert (
        Contact.get(Contact.id == user("alice.new@example.com").contact_id).email
        == "alice.new@example.com"
    )
    assert [d.address for d in deliveries("email_changed")] == ["alice@example.com"]
    Client(core_demo).login("alice.new@example.com")
    again = alice.post("/api/v1/account/email/verify", json={"token": link.split("token=")[1]})
    assert again.status_code == 422  # a link works once


@pytest.mark.spec("ACCT-1")
def test_email_change_needs_the_password_and_a_new_valid_address(core_demo):
    alice = signed_in(core_demo, "alice@example.com")
    wrong = alice.post(
        "/api/v1/account/email", json={"email": "a2@example.com", "password": "Wrong-Pass-2026!"}
    )
    assert wrong.json["errors"] == {"password": ["This is not your current password."]}
    same = alice.post(
        "/api/v1/account/email", json={"email": "ALICE@example.com", "password": DEMO_PASSWORD}
    )
    assert same.json["errors"] == {"email": ["This is already your email address."]}
    bad = alice.post("/account/email", form={"email": "not-an-email", "password": DEMO_PASSWORD})
    assert bad.status_code == 422 and "Enter a valid email address" in bad.text
    assert deliveries("email_change_verify") == []


@pytest.mark.spec("ACCT-1")
def test_confirmation_links_expire_and_taken_addresses_are_refused(core_demo):
    alice = signed_in(core_demo, "alice@example.com")
    with time_machine.travel(utcnow(), tick=False) as clock:
        alice.post(
            "/api/v1/account/email", json={"email": "bob@example.com", "password": DEMO_PASSWORD}
        )
        taken = reset_link("email_change_verify").split("token=")[1]
        refused = alice.post("/api/v1/account/email/verify", json={"token": taken})
        assert refused.json["errors"] == {
            "email": ["This email address is already used by another account."]
        }
        alice.post(
            "/api/v1/account/email", json={"email": "alice2@example.com", "password": DEMO_PASSWORD}
        )
        token = reset_link("email_change_verify").split("token=")[1]
        clock.shift(timedelta(hours=24, seconds=1))
        assert alice.get(f"/account/email/verify?token={token}").status_code == 410
    assert user("alice@example.com")


@pytest.mark.spec("ACCT-4")
def test_password_change_needs_the_current_password(core_demo):
    alice = signed_in(core_demo, "alice@example.com")
    wrong = alice.post(
        "/account/password",
        form={
            "current_password": "Guess-1234!",
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
        },
    )
    assert wrong.status_code == 422 and "This is not your current password." in wrong.text
    weak = alice.post(
        "/api/v1/account/password",
        json={"current_password": DEMO_PASSWORD, "new_password": "short"},
    )
    assert weak.json["errors"] == {"new_password": ["Use at least 8 characters."]}
    same = alice.post(
        "/api/v1/account/password",
        json={"current_password": DEMO_PASSWORD, "new_password": DEMO_PASSWORD},
    )
    assert "different" in same.json["errors"]["new_password"][0]
    Client(core_demo).login("alice@example.com")  # unchanged


@pytest.mark.spec("ACCT-4")
def test_password_change_can_end_the_other_sessions(core_demo):
    phone = signed_in(core_demo, "alice@example.com")
    laptop = signed_in(core_demo, "alice@example.com")
    done = laptop.post(
        "/account/password",
        form={
            "current_password": DEMO_PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
            "end_other_sessions": "true",
        },
    )
    assert done.headers["location"] == "/account?notice=password-ended"
    assert laptop.get("/api/v1/me").status_code == 200
    assert phone.get("/api/v1/me").status_code == 401
    assert deliveries("password_changed", "alice@example.com")
    tablet = signed_in(core_demo, "alice@example.com", NEW_PASSWORD)
    kept = laptop.post(
        "/api/v1/account/password",
        json={
            "current_password": NEW_PASSWORD,
            "new_password": "Third-Pass-2032!",
            "end_other_sessions": False,
        },
    )
    assert kept.status_code == 200 and tablet.get("/api/v1/me").status_code == 200


@pytest.mark.spec("ACCT-5")
def test_sessions_list_and_sign_out_everywhere_else(core_demo):
    first = signed_in(core_demo, "alice@example.com")
    second = signed_in(core_demo, "alice@example.com")
    listed = second.get("/api/v1/account/sessions").json["items"]
    assert len(listed) == 2 and sum(s["current"] for s in listed) == 1
    assert second.post("/api/v1/account/sessions/end-others").json == {"ended": 1}
    assert first.get("/api/v1/me").status_code == 401
    assert second.get("/api/v1/me").status_code == 200
