"""Web push channel: a real encrypted push to a push service on loopback (NOT-4, MOB-3)."""

import base64
import json
import os

import http_ece
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from engine.cli import cli
from engine.db import utcnow
from engine.models import User
from engine.notify import Notice, notify
from engine.testing import Client, PrincipalHeader, as_user, problem, run_tasks
from https_service import HTTPSService
from plugins.webpush.models import PushSubscription


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.fixture
def push_service(tmp_path, monkeypatch):
    """A push service over real HTTPS on loopback; the push client trusts its CA."""
    service = HTTPSService(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(service.ca_file))
    yield service
    service.close()


@pytest.fixture
def vapid():
    result = CliRunner().invoke(
        cli, ["webpush", "keys"], env={"PORTICO_DEMO": "true", "PORTICO_DATA_DIR": "/tmp/vapid"}
    )
    assert result.exit_code == 0, result.output
    lines = dict(line.split(" = ") for line in result.output.splitlines() if " = " in line)
    return {k: v.split('"')[1] for k, v in lines.items()}


@pytest.fixture
def papp(make_app, vapid):
    from engine.testing import seed_people

    app = make_app(
        plugins=[("test-auth", PrincipalHeader())],
        webpush=vapid,
        outbound={"unsafe_allow_loopback_for_tests": True},
    )  # the service's 127.0.0.1
    seed_people(app)
    return app


def browser_keys():
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return private, b64(public), os.urandom(16)


@pytest.mark.spec("NOT-4", "MOB-3")
def test_a_notice_reaches_a_subscribed_browser_encrypted_and_signed(papp, push_service, vapid):
    user = User.get(User.email == "alice@example.com")
    client = as_user(Client(papp), user)
    assert client.get("/api/v1/push/key").json["public_key"] == vapid["vapid_public_key"]
    private, public, auth = browser_keys()
    created = client.post(
        "/api/v1/push/subscriptions",
        json={"endpoint": push_service.url + "abc", "keys": {"p256dh": public, "auth": b64(auth)}},
    )
    assert created.status_code == 201, created.text
    prefs = client.get("/api/v1/account/notification-preferences").json
    assert {"id": "push", "label": "Push"} in prefs["available_channels"]
    prefs["channels"]["service"] = ["email", "push"]
    prefs = {k: prefs[k] for k in ("frequency", "channels", "thresholds")}
    del prefs["channels"]["security"]
    assert client.put("/api/v1/account/notification-preferences", json=prefs).status_code == 200
    with papp.database.atomic():
        notice = Notice(
            kind="service_expiring",
            key="p-1",
            category="service",
            user_id=user.id,
            data={"service": "Fibre", "service_id": 1, "days": 3, "ends_at": utcnow().isoformat()},
        )
        notify(papp, notice)
        notify(papp, notice)  # raised twice, pushed once
    run_tasks(papp)
    [(headers, body)] = push_service.received
    headers = {k.lower(): v for k, v in headers.items()}
    assert headers["content-encoding"] == "aes128gcm"
    assert headers["authorization"].startswith("vapid t=")
    plain = http_ece.decrypt(body, private_key=private, auth_secret=auth, version="aes128gcm")
    assert json.loads(plain)["title"] == "Fibre ends in 3 days"


def test_a_gone_subscription_is_forgotten(papp, push_service):
    user = User.get(User.email == "alice@example.com")
    client = as_user(Client(papp), user)
    _, public, auth = browser_keys()
    client.post(
        "/api/v1/push/subscriptions",
        json={"endpoint": push_service.url + "gone", "keys": {"p256dh": public, "auth": b64(auth)}},
    )
    push_service.status = 410
    with papp.database.atomic():
        notify(
            papp,
            Notice(
                kind="service_expiring",
                key="p-2",
                category="service",
                mandatory=True,
                user_id=user.id,
                data={"service": "TV", "service_id": 1, "days": 1, "ends_at": utcnow().isoformat()},
            ),
        )
    run_tasks(papp)
    assert len(push_service.received) == 1
    assert PushSubscription.select().count() == 0


def test_subscriptions_are_private_and_validated(papp, push_service):
    alice = as_user(Client(papp), User.get(User.email == "alice@example.com"))
    bob = as_user(Client(papp), User.get(User.email == "bob@example.com"))
    _, public, auth = browser_keys()
    sub = alice.post(
        "/api/v1/push/subscriptions",
        json={"endpoint": push_service.url + "a", "keys": {"p256dh": public, "auth": b64(auth)}},
    ).json
    assert bob.get("/api/v1/push/subscriptions").json["items"] == []
    assert bob.delete(f"/api/v1/push/subscriptions/{sub['id']}").status_code == 404
    body = problem(
        alice.post(
            "/api/v1/push/subscriptions", json={"endpoint": "not a url", "keys": {"p256dh": "x"}}
        )
    )
    assert set(body["errors"]) == {"endpoint", "keys"}
    assert alice.delete(f"/api/v1/push/subscriptions/{sub['id']}").status_code == 204
    assert PushSubscription.select().count() == 0


def test_without_vapid_keys_the_channel_and_api_are_absent(make_app):
    app = make_app(plugins=[("test-auth", PrincipalHeader())])
    assert "push" not in app.channels
    assert Client(app).get("/api/v1/push/key").status_code == 404
