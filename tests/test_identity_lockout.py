"""Lockout (PWD-3): 5 failures lock an email for 30 minutes, in the database, revealing nothing."""

from datetime import timedelta

import pytest
import time_machine

from engine.db import utcnow
from engine.testing import DEMO_PASSWORD, Client
from identity_support import NEW_PASSWORD, core_client, core_demo, deliveries, reset_link  # noqa: F401
from plugins.identity.models import LoginGuard, PasswordReset

LOCKED = (
    "Too many failed sign-in attempts: sign-in for this email is paused for 30 minutes. "
    "If an account uses this email, we have emailed it a link to reset the password."
)


def attempt(client, email, password="Wrong-guess-1!"):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


@pytest.mark.spec("PWD-3")
def test_five_failures_lock_the_account_and_send_one_reset_email(core_client):
    for _ in range(4):
        assert attempt(core_client, "alice@example.com").status_code == 401
    fifth = attempt(core_client, "alice@example.com")
    assert fifth.status_code == 429 and fifth.json["title"] == LOCKED
    # Even the right password is refused while locked.
    assert attempt(core_client, "alice@example.com", DEMO_PASSWORD).json["title"] == LOCKED
    for _ in range(10):
        attempt(core_client, "alice@example.com")
    resets = deliveries("password_reset", "alice@example.com")
    assert len(resets) == 1 and resets[0].data["reason"] == "lockout"
    assert len(deliveries("account_locked", "alice@example.com")) == 1
    assert PasswordReset.select().count() == 1
    guard = LoginGuard.get(LoginGuard.key == "customer:alice@example.com")
    assert guard.failures == 5 and guard.locked_until is not None


@pytest.mark.spec("PWD-3")
def test_an_unknown_email_gets_exactly_the_same_answers(core_client):
    known = [attempt(core_client, "alice@example.com").json for _ in range(7)]
    unknown = [attempt(core_client, "nobody@example.com").json for _ in range(7)]
    assert known == unknown
    assert deliveries(address="nobody@example.com") == []


@pytest.mark.spec("PWD-3")
def test_the_lock_lifts_after_thirty_minutes(core_demo):
    client = Client(core_demo)
    with time_machine.travel(utcnow(), tick=False) as clock:
        for _ in range(5):
            attempt(client, "alice@example.com")
        clock.shift(timedelta(minutes=29, seconds=59))
        assert attempt(client, "alice@example.com", DEMO_PASSWORD).status_code == 429
        clock.shift(timedelta(seconds=1))  # 30:00
        assert attempt(client, "alice@example.com", DEMO_PASSWORD).status_code == 200
    # A fresh count afterwards: one failure does not lock again.
    assert attempt(client, "alice@example.com").status_code == 401
    assert attempt(client, "alice@example.com", DEMO_PASSWORD).status_code == 200


@pytest.mark.spec("PWD-3")
def test_a_lock_that_ran_out_starts_a_new_count_and_a_new_email(core_demo):
    client = Client(core_demo)
    with time_machine.travel(utcnow(), tick=False) as clock:
        for _ in range(5):
            attempt(client, "alice@example.com")
        clock.shift(timedelta(minutes=31))
        for _ in range(4):
            assert attempt(client, "alice@example.com").status_code == 401
        assert attempt(client, "alice@example.com").status_code == 429
    assert len(deliveries("password_reset", "alice@example.com")) == 2


@pytest.mark.spec("PWD-3", "PWD-1")
def test_a_completed_reset_lifts_the_lock(core_client):
    for _ in range(5):
        attempt(core_client, "alice@example.com")
    link = reset_link("password_reset", "alice@example.com")
    token = link.split("token=")[1]
    done = core_client.post(
        "/api/v1/auth/password/reset", json={"token": token, "password": NEW_PASSWORD}
    )
    assert done.status_code == 200
    assert attempt(core_client, "alice@example.com", NEW_PASSWORD).status_code == 200


@pytest.mark.spec("PWD-3")
def test_counters_are_shared_by_every_worker(core_demo, make_app):
    """Two app instances (two gunicorn workers, or two hosts) on one database see one count."""
    other_worker = make_app()
    first, second = Client(core_demo), Client(other_worker)
    for _ in range(3):
        attempt(first, "bob@example.com")
    for _ in range(2):
        attempt(second, "bob@example.com")
    assert attempt(first, "bob@example.com", DEMO_PASSWORD).status_code == 429


@pytest.mark.spec("PWD-3")
def test_wrong_second_factors_count_toward_the_lock(core_demo):
    from identity_support import enable_2fa, user

    client = Client(core_demo)
    client.login("alice@example.com")
    enable_2fa(client, user("alice@example.com"))
    for _ in range(5):
        answer = client.post(
            "/api/v1/auth/login",
            json={"email": "alice@example.com", "password": DEMO_PASSWORD, "otp": "000000"},
        )
    assert answer.status_code == 429 and answer.json["title"] == LOCKED


def test_staff_logins_lock_too(core_client):
    for _ in range(5):
        core_client.post(
            "/api/v1/staff/auth/login",
            json={"email": "agent@example.com", "password": "Wrong-guess-1!"},
        )
    locked = core_client.post(
        "/api/v1/staff/auth/login", json={"email": "agent@example.com", "password": DEMO_PASSWORD}
    )
    assert locked.status_code == 429
    assert len(deliveries("account_locked", "agent@example.com")) == 1
