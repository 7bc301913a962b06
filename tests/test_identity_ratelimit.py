"""Rate limits on sign-in, reset, 2FA and key creation, kept in the database or Redis."""

from datetime import timedelta

import pytest
import time_machine

from engine.db import utcnow
from engine.testing import DEMO_PASSWORD, Client, need_service, problem
from identity_support import enable_2fa, signed_in, user
from plugins.identity.models import RateCounter

TIGHT = {
    "login_rate": "3/minute",
    "login_account_rate": "2/minute",
    "reset_rate": "2/hour",
    "otp_rate": "2/minute",
    "api_key_rate": "2/hour",
}


@pytest.fixture
def tight_app(make_app):
    from engine.core.demo import seed

    app = make_app(identity=TIGHT)
    seed(app, {})
    return app


def login(client, email, password="Wrong-Pass-2026!"):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def test_sign_in_is_limited_per_email_with_retry_after(tight_app):
    client = Client(tight_app)
    assert [login(client, "alice@example.com").status_code for _ in range(2)] == [401, 401]
    limited = login(client, "alice@example.com", DEMO_PASSWORD)
    assert limited.status_code == 429 and problem(limited)["title"] == "Too many attempts"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    with time_machine.travel(utcnow() + timedelta(seconds=61), tick=False):
        assert login(client, "alice@example.com", DEMO_PASSWORD).status_code == 200


def test_sign_in_is_limited_per_address_whatever_the_email(tight_app):
    client = Client(tight_app)
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        assert login(client, email).status_code == 401
    assert login(client, "d@example.com").status_code == 429
    page = client.post("/login", form={"email": "e@example.com", "password": "x"})
    assert page.status_code == 429 and "Too many attempts" in page.text


def test_counts_live_in_the_database_not_in_a_process(tight_app, make_app):
    other_worker = make_app(identity=TIGHT)
    login(Client(tight_app), "alice@example.com")
    login(Client(other_worker), "alice@example.com")
    assert login(Client(tight_app), "alice@example.com").status_code == 429
    assert (
        RateCounter.select().where(RateCounter.key.contains("alice@example.com")).get().count == 3
    )


def test_reset_requests_are_limited(tight_app):
    client = Client(tight_app)
    answers = [
        client.post("/api/v1/auth/password/forgot", json={"email": "bob@example.com"})
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [202, 202, 429]


def test_second_factor_tries_are_limited(tight_app):
    alice = user("alice@example.com")
    enable_2fa(signed_in(tight_app, "alice@example.com"), alice)
    with time_machine.travel(utcnow() + timedelta(minutes=2), tick=False):
        client = Client(tight_app)
        client.post("/login", form={"email": "alice@example.com", "password": DEMO_PASSWORD})
        assert client.post("/login/2fa", form={"otp": "000000"}).status_code == 401
        assert client.post("/login/2fa", form={"otp": "000001"}).status_code == 401
        assert client.post("/login/2fa", form={"otp": "000002"}).status_code == 429


def test_key_creation_is_limited_per_customer(tight_app):
    bob = signed_in(tight_app, "bob@example.com")
    body = {"name": "k", "access": "read", "expires_at": (utcnow() + timedelta(days=9)).isoformat()}
    answers = [bob.post("/api/v1/account/api-keys", json=body).status_code for _ in range(3)]
    assert answers == [201, 201, 429]


@pytest.mark.redis
def test_limits_can_live_in_redis(make_app):
    import redis

    try:
        server = redis.Redis.from_url("redis://127.0.0.1:6379/14")
        server.ping()
    except redis.RedisError as exc:
        need_service("Redis", exc)
    server.flushdb()
    from engine.core.demo import seed

    app = make_app(identity=TIGHT, security={"rate_limit_storage": "redis://127.0.0.1:6379/14"})
    seed(app, {})
    try:
        client = Client(app)
        assert [login(client, "alice@example.com").status_code for _ in range(3)] == [401, 401, 429]
        assert any(b"alice@example.com" in k for k in server.keys("*"))
        assert RateCounter.select().count() == 0
    finally:
        server.flushdb()
