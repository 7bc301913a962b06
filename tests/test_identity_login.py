"""Signing in and out: sessions, cookies, bearer tokens, timeouts, new-device email (ACC-1)."""

from datetime import timedelta

import pytest
import time_machine

from engine.db import utcnow
from engine.models import AuditEvent
from engine.security import token_hash
from engine.testing import DEMO_PASSWORD, Client, problem
from identity_support import core_client, core_demo, deliveries, signed_in, user  # noqa: F401
from plugins.identity.models import Session


def cookie_of(result, name):
    return next(c for n, c in result.cookies.items() if n == name)


@pytest.mark.spec("ACC-1")
def test_login_page_starts_a_server_side_session_in_a_hardened_cookie(core_demo):
    client = Client(core_demo)
    assert client.get("/login").status_code == 200
    answer = client.post(
        "/login",
        form={"email": "Alice@Example.com ", "password": DEMO_PASSWORD, "next": "/account"},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/account"
    cookie = cookie_of(answer, "portico_session")
    assert cookie.http_only and cookie.same_site == "Lax" and cookie.path == "/"
    assert len(cookie.value) >= 43  # 256 random bits, URL-safe
    row = Session.get(Session.token_hash == token_hash(cookie.value))
    assert row.kind == "customer" and row.user_id == user("alice@example.com").id
    assert not Session.select().where(Session.token_hash == cookie.value).exists()
    assert client.get("/account").status_code == 200
    assert AuditEvent.get(AuditEvent.action == "login").ip == "127.0.0.1"


def test_session_cookie_is_secure_on_https(make_app):
    from engine.core.demo import seed

    app = make_app(base_url="https://portal.test")
    seed(app, {})
    answer = Client(app).post(
        "/api/v1/auth/login", json={"email": "alice@example.com", "password": DEMO_PASSWORD}
    )
    assert cookie_of(answer, "portico_session").secure


@pytest.mark.spec("ACC-1", "PWD-3")
def test_wrong_password_and_unknown_email_get_the_same_answer(core_client):
    wrong = core_client.post(
        "/api/v1/auth/login", json={"email": "alice@example.com", "password": "Not-it-2026!"}
    )
    unknown = core_client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "Not-it-2026!"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert problem(wrong) == problem(unknown)
    page_wrong = core_client.post("/login", form={"email": "alice@example.com", "password": "x"})
    page_unknown = core_client.post("/login", form={"email": "nobody@example.com", "password": "x"})
    assert page_wrong.status_code == page_unknown.status_code == 401
    assert "The email or password is not right." in page_wrong.text
    assert page_wrong.text.replace("alice@example.com", "E") == page_unknown.text.replace(
        "nobody@example.com", "E"
    )


@pytest.mark.spec("ACC-1")
def test_api_login_answers_a_bearer_token_and_sets_the_cookie(core_demo):
    client = Client(core_demo)
    answer = client.post(
        "/api/v1/auth/login", json={"email": "bob@example.com", "password": DEMO_PASSWORD}
    )
    assert answer.status_code == 200
    body = answer.json
    assert set(body) >= {"token", "expires_at", "csrf_token"}
    assert cookie_of(answer, "portico_session").value == body["token"]
    bearer = Client(core_demo, headers={"Authorization": f"Bearer {body['token']}"})
    me = bearer.get("/api/v1/me")
    assert me.status_code == 200 and me.json["email"] == "bob@example.com"
    assert me.json["via"] == "token"
    # Cookie-authenticated writes need the CSRF token; bearer writes do not.
    assert client.patch("/api/v1/account", json={"locale": "en"}, csrf=False).status_code == 403
    assert (
        client.patch(
            "/api/v1/account", json={"locale": "en"}, headers={"X-CSRF-Token": body["csrf_token"]}
        ).status_code
        == 200
    )
    assert bearer.patch("/api/v1/account", json={"locale": "en"}).status_code == 200


@pytest.mark.spec("ACC-1")
def test_a_planted_session_cookie_is_replaced_at_login(core_demo):
    attacker = signed_in(core_demo, "bob@example.com")
    victim = Client(core_demo)
    victim.cookies["portico_session"] = attacker.cookies["portico_session"]
    victim.login("alice@example.com")
    assert victim.cookies["portico_session"] != attacker.cookies["portico_session"]
    assert victim.get("/api/v1/me").json["email"] == "alice@example.com"
    assert attacker.get("/api/v1/me").json["email"] == "bob@example.com"


@pytest.mark.spec("ACC-1")
def test_logout_ends_the_session_on_the_server(core_demo):
    client = signed_in(core_demo, "alice@example.com")
    token = client.cookies["portico_session"]
    answer = client.post("/logout", form={})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    assert "portico_session" not in client.cookies
    replay = Client(core_demo, headers={"Authorization": f"Bearer {token}"})
    assert replay.get("/api/v1/me").status_code == 401
    # The API logout ends a bearer session the same way.
    api = Client(core_demo)
    token = api.login("alice@example.com")["token"]
    bearer = Client(core_demo, headers={"Authorization": f"Bearer {token}"})
    assert bearer.post("/api/v1/auth/logout").status_code == 200
    assert bearer.get("/api/v1/me").status_code == 401
    assert AuditEvent.select().where(AuditEvent.action == "logout").count() == 2


@pytest.mark.spec("ACC-1")
def test_idle_timeout_ends_a_quiet_session(core_demo):
    with time_machine.travel(utcnow(), tick=False) as clock:
        client = signed_in(core_demo, "alice@example.com")
        clock.shift(timedelta(minutes=29, seconds=59))
        assert client.get("/api/v1/me").status_code == 200  # activity resets the idle clock
        clock.shift(timedelta(minutes=29, seconds=59))
        assert client.get("/api/v1/me").status_code == 200
        clock.shift(timedelta(minutes=30))
        assert client.get("/api/v1/me").status_code == 401
        assert client.get("/account").headers["location"] == "/login?next=%2Faccount"


@pytest.mark.spec("ACC-1")
def test_absolute_timeout_ends_even_a_busy_session(core_demo):
    with time_machine.travel(utcnow(), tick=False) as clock:
        client = signed_in(core_demo, "alice@example.com")
        for _ in range(int(12 * 60 / 20) - 1):
            clock.shift(timedelta(minutes=20))
            assert client.get("/api/v1/me").status_code == 200
        clock.shift(timedelta(minutes=20))  # 12 hours after sign-in
        assert client.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize(
    "target, landed",
    [
        ("/account/sites", "/account/sites"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_next_stays_on_this_site(core_demo, target, landed):
    client = Client(core_demo)
    answer = client.post(
        "/login", form={"email": "alice@example.com", "password": DEMO_PASSWORD, "next": target}
    )
    assert answer.headers["location"] == landed


def test_login_form_needs_the_csrf_token(core_client):
    answer = core_client.post(
        "/login", form={"email": "alice@example.com", "password": DEMO_PASSWORD}, csrf=False
    )
    assert answer.status_code == 403
    assert "portico_session" not in core_client.cookies


@pytest.mark.spec("NOT-1", "ACC-1")
def test_a_login_from_a_new_device_sends_a_security_email(core_demo):
    phone = signed_in(core_demo, "alice@example.com", **{"User-Agent": "Phone/1.0"})
    assert deliveries("new_device") == []  # the very first sign-in is not news
    phone.login("alice@example.com")  # same device (its cookie): nothing
    assert deliveries("new_device") == []
    signed_in(core_demo, "alice@example.com", **{"User-Agent": "Laptop/2.0"})
    sent = deliveries("new_device")
    assert len(sent) == 1 and sent[0].address == "alice@example.com"
    assert sent[0].data["user_agent"] == "Laptop/2.0" and sent[0].data["ip"] == "127.0.0.1"


@pytest.mark.spec("NOT-1", "ACCT-5")
@pytest.mark.parametrize(
    "locale, named", [("en", "Chrome on Android"), ("zh_Hans", "Android 上的 Chrome")]
)
def test_the_new_device_email_names_the_device_as_the_activity_log_does(core_demo, locale, named):
    from engine.models import User
    from plugins.email.tasks import render

    android = (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Mobile Safari/537.36"
    )
    User.update(locale=locale).where(User.email == "alice@example.com").execute()
    signed_in(core_demo, "alice@example.com", **{"User-Agent": "Phone/1.0"})
    phone = signed_in(core_demo, "alice@example.com", **{"User-Agent": android})
    [sent] = deliveries("new_device")
    _subject, text, html = render(core_demo, sent)
    assert named in text and named in html and "Chrome/126" not in text + html
    login = phone.get("/api/v1/account/activity").json["items"][0]
    assert login["action"] == "login" and login["device"] == named


@pytest.mark.spec("NOT-1")
def test_the_new_device_email_tells_the_time_in_the_customers_zone(core_demo):
    from datetime import datetime, timezone
    from engine.models import User
    from plugins.email.tasks import render

    User.update(timezone="Asia/Shanghai").where(User.email == "alice@example.com").execute()
    signed_in(core_demo, "alice@example.com", **{"User-Agent": "Phone/1.0"})
    with time_machine.travel(datetime(2026, 12, 5, 20, 30, tzinfo=timezone.utc), tick=False):
        signed_in(core_demo, "alice@example.com", **{"User-Agent": "Laptop/2.0"})
    [sent] = deliveries("new_device")
    _subject, text, html = render(core_demo, sent)
    assert "6 December 2026" in text and "04:30" in text and "UTC" not in text
    assert "04:30" in html


def test_signed_in_visitors_skip_the_login_page(core_demo):
    client = signed_in(core_demo, "alice@example.com")
    assert client.get("/login?next=/account").headers["location"] == "/account"


def test_staff_sessions_do_not_open_the_customer_portal(core_demo):
    staff = Client(core_demo)
    token = staff.login("agent@example.com", staff=True)["token"]
    as_bearer = Client(core_demo, headers={"Authorization": f"Bearer {token}"})
    assert as_bearer.get("/api/v1/me").status_code == 401
    customer_token = Client(core_demo).login("alice@example.com")["token"]
    customer = Client(core_demo, headers={"Authorization": f"Bearer {customer_token}"})
    assert customer.get("/api/v1/staff/customers").status_code == 401
