"""Password reset (PWD-1): one hour, once, quiet about who is registered, never around 2FA."""

from datetime import timedelta

import pytest
import time_machine

from engine.db import utcnow
from engine.testing import DEMO_PASSWORD, Client, problem, run_tasks
from identity_support import (
    NEW_PASSWORD,
    core_client,  # noqa: F401  (fixture)
    core_demo,  # noqa: F401  (fixture)
    deliveries,
    enable_2fa,
    link_in,
    reset_link,
    sent_mail,
    signed_in,
    text_of,
    user,
)

SENT = (
    "If an account uses this email, we have sent it a link to reset the password. "
    "The link works once, for one hour."
)


def forgot(client, email):
    """Ask for a link; the worker writes it (the request does the same work for any email)."""
    answer = client.post("/api/v1/auth/password/forgot", json={"email": email})
    run_tasks(client.app)
    return answer


def token_of(link: str) -> str:
    return link.split("token=")[1]


@pytest.mark.spec("PWD-1")
def test_forgot_password_email_link_new_password_then_sign_in(core_demo):
    """The whole flow through the pages, reading the link from the delivered email."""
    client = Client(core_demo)
    page = client.post("/password/forgot", form={"email": "alice@example.com"})
    assert page.status_code == 200 and SENT in page.text
    mails = sent_mail(core_demo)
    assert len(mails) == 1 and mails[0]["To"] == "alice@example.com"
    assert mails[0]["Subject"] == "Reset your password"
    link = link_in(text_of(mails[0]), "/password/reset")
    form = client.get(link)
    assert form.status_code == 200 and 'name="token"' in form.text
    assert form.headers["Referrer-Policy"] == "no-referrer"
    done = client.post(
        "/password/reset",
        form={"token": token_of(link), "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
    )
    assert done.status_code == 303 and done.headers["location"] == "/login?notice=reset"
    assert "Your password has been changed" in client.get("/login?notice=reset").text
    assert (
        Client(core_demo)
        .post("/api/v1/auth/login", json={"email": "alice@example.com", "password": DEMO_PASSWORD})
        .status_code
        == 401
    )
    Client(core_demo).login("alice@example.com", NEW_PASSWORD)
    assert deliveries("password_changed", "alice@example.com")


@pytest.mark.spec("PWD-1")
def test_the_answer_never_reveals_whether_the_email_is_registered(core_client):
    known, unknown = forgot(core_client, "alice@example.com"), forgot(core_client, "no@example.com")
    assert known.status_code == unknown.status_code == 202
    assert known.json == unknown.json == {"status": "sent", "detail": SENT}
    assert [d.address for d in deliveries("password_reset")] == ["alice@example.com"]


@pytest.mark.spec("PWD-1")
def test_a_link_is_valid_for_3600_seconds_and_no_longer(core_demo):
    client = Client(core_demo)
    with time_machine.travel(utcnow(), tick=False) as clock:
        forgot(client, "alice@example.com")
        forgot(client, "bob@example.com")
        alice, bob = (
            token_of(reset_link(address=a)) for a in ("alice@example.com", "bob@example.com")
        )
        clock.shift(timedelta(seconds=3600))
        assert client.get(f"/password/reset?token={alice}").status_code == 200
        assert (
            client.post(
                "/api/v1/auth/password/reset", json={"token": alice, "password": NEW_PASSWORD}
            ).status_code
            == 200
        )
        clock.shift(timedelta(seconds=1))  # 3601 s
        assert client.get(f"/password/reset?token={bob}").status_code == 410
        late = client.post(
            "/api/v1/auth/password/reset", json={"token": bob, "password": NEW_PASSWORD}
        )
        assert late.status_code == 422 and "expired" in late.json["errors"]["token"][0]
    client.login("bob@example.com")  # bob's password did not change


@pytest.mark.spec("PWD-1")
def test_a_link_works_once(core_client):
    forgot(core_client, "alice@example.com")
    token = token_of(reset_link())
    first = core_client.post(
        "/api/v1/auth/password/reset", json={"token": token, "password": NEW_PASSWORD}
    )
    again = core_client.post(
        "/api/v1/auth/password/reset", json={"token": token, "password": "Other-Pass-2032!"}
    )
    assert first.status_code == 200 and again.status_code == 422
    core_client.login("alice@example.com", NEW_PASSWORD)


@pytest.mark.spec("PWD-1")
def test_a_password_change_kills_older_links(core_demo):
    client = signed_in(core_demo, "alice@example.com")
    forgot(client, "alice@example.com")
    token = token_of(reset_link())
    assert (
        client.post(
            "/api/v1/account/password",
            json={"current_password": DEMO_PASSWORD, "new_password": NEW_PASSWORD},
        ).status_code
        == 200
    )
    stale = client.post(
        "/api/v1/auth/password/reset", json={"token": token, "password": "Other-Pass-2032!"}
    )
    assert stale.status_code == 422


@pytest.mark.spec("PWD-1", "ACCT-1")
def test_an_email_change_kills_older_links(core_demo):
    client = signed_in(core_demo, "alice@example.com")
    forgot(client, "alice@example.com")
    token = token_of(reset_link())
    client.post(
        "/api/v1/account/email", json={"email": "alice.new@example.com", "password": DEMO_PASSWORD}
    )
    verify = token_of(reset_link("email_change_verify"))
    assert client.post("/api/v1/account/email/verify", json={"token": verify}).status_code == 200
    stale = client.post(
        "/api/v1/auth/password/reset", json={"token": token, "password": NEW_PASSWORD}
    )
    assert stale.status_code == 422


@pytest.mark.spec("PWD-1", "ACCT-6")
def test_a_reset_is_never_a_way_around_two_factor(core_demo):
    client = signed_in(core_demo, "alice@example.com")
    enable_2fa(client, user("alice@example.com"))
    forgot(client, "alice@example.com")
    token = token_of(reset_link())
    done = Client(core_demo).post(
        "/api/v1/auth/password/reset", json={"token": token, "password": NEW_PASSWORD}
    )
    assert done.status_code == 200 and "token" not in done.json  # nobody is signed in
    assert "portico_session" not in Client(core_demo).cookies
    answer = Client(core_demo).post(
        "/api/v1/auth/login", json={"email": "alice@example.com", "password": NEW_PASSWORD}
    )
    assert answer.status_code == 401 and problem(answer)["type"] == "/problems/otp-required"


@pytest.mark.spec("PWD-1")
def test_a_reset_signs_out_every_session(core_demo):
    client = signed_in(core_demo, "alice@example.com")
    forgot(client, "alice@example.com")
    Client(core_demo).post(
        "/api/v1/auth/password/reset",
        json={"token": token_of(reset_link()), "password": NEW_PASSWORD},
    )
    assert client.get("/api/v1/me").status_code == 401


@pytest.mark.spec("PWD-2", "PWD-1")
def test_the_new_password_must_meet_the_policy_field_by_field(core_client):
    forgot(core_client, "alice@example.com")
    link = reset_link()
    weak = core_client.post(
        "/api/v1/auth/password/reset", json={"token": token_of(link), "password": "password1"}
    )
    assert weak.status_code == 422
    assert (
        "This password is too common and easy to guess; choose another."
        in weak.json["errors"]["password"]
    )
    page = core_client.post(
        "/password/reset",
        form={"token": token_of(link), "password": "short", "password_confirm": "short"},
    )
    assert page.status_code == 422 and "Use at least 8 characters." in page.text
    assert 'aria-invalid="true"' in page.text
    mismatch = core_client.post(
        "/password/reset",
        form={
            "token": token_of(link),
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD + "x",
        },
    )
    assert "The two passwords are not the same." in mismatch.text
    core_client.login("alice@example.com")  # nothing was saved
