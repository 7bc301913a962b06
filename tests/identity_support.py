"""Helpers for the identity, account and staff tests: demo logins, TOTP codes, sent mail."""

from __future__ import annotations

import email
import re
import time
from pathlib import Path

import pyotp
import pytest

from engine import db
from engine.models import User
from engine.testing import DEMO_PASSWORD, Client, run_tasks
from plugins.email.models import EmailDelivery
from plugins.identity import twofactor
from plugins.identity.models import TwoFactor

NEW_PASSWORD = "Fresh-Start-2031!"


def signed_in(app, email_address: str, password: str = DEMO_PASSWORD, **headers) -> Client:
    client = Client(app, headers=headers or None)
    client.login(email_address, password)
    return client


def user(email_address: str) -> User:
    return User.get(User.email == email_address)


def deliveries(kind: str | None = None, address: str | None = None) -> list[EmailDelivery]:
    query = EmailDelivery.select().order_by(EmailDelivery.id)
    if kind:
        query = query.where(EmailDelivery.kind == kind)
    if address:
        query = query.where(EmailDelivery.address == address)
    return list(query)


def sent_mail(app) -> list[email.message.Message]:
    """Deliver everything pending through the real worker; the .eml files, oldest first."""
    run_tasks(app)
    folder = Path(app.settings.data_dir) / "mail"
    files = sorted(folder.glob("*.eml"), key=lambda p: (p.stat().st_mtime, p.name))
    return [email.message_from_bytes(p.read_bytes()) for p in files]


def text_of(message) -> str:
    part = message.get_body(("plain",)) if hasattr(message, "get_body") else None
    if part is None:
        for p in message.walk():
            if p.get_content_type() == "text/plain":
                part = p
                break
    return part.get_payload(decode=True).decode()


def link_in(text: str, path: str) -> str:
    """The site-relative link to ``path`` in an email body."""
    found = re.search(r"https?://[^/\s]+(" + re.escape(path) + r"[^\s\"<]*)", text)
    assert found, f"no {path} link in: {text[:500]}"
    return found.group(1)


def reset_link(kind: str = "password_reset", address: str | None = None) -> str:
    """The site-relative link of the newest ``kind`` notice (as the email carries it)."""
    url = deliveries(kind, address)[-1].data["url"]
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def totp_code(app, u: User, offset_steps: int = 0) -> str:
    """The code the user's authenticator app shows now (or ``offset_steps`` 30 s steps on)."""
    secret = twofactor.seed(app, TwoFactor.get(TwoFactor.user == u.id))
    return pyotp.TOTP(secret).at(int(time.time()) + 30 * offset_steps)


def enable_2fa(client: Client, u: User) -> list[str]:
    setup = client.post("/api/v1/account/2fa/setup")
    assert setup.status_code == 200, setup.text
    answer = client.post(
        "/api/v1/account/2fa/enable", json={"code": pyotp.TOTP(setup.json["secret"]).now()}
    )
    assert answer.status_code == 200, answer.text
    return answer.json["backup_codes"]


@pytest.fixture
def core_demo(make_app):
    """An app with the core demo people only (alice, bob + carol, admin, agent).

    Other plugins' demo data is left out so these tests prove identity rules alone.
    """
    from engine.core.demo import seed

    app = make_app()
    app.demo = {}
    with db.connection():
        seed(app, app.demo)
    return app


@pytest.fixture
def core_client(core_demo):
    return Client(core_demo)
