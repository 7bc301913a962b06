"""Secrets and security notices go to the verified email address only (SEC-1).

Found by the outside probe (issue 14): security notices went to every channel, web push
included, so a push subscription someone else had registered for the customer received the
password-reset message with its link. Now a notice that carries a secret or is a security
notice is ``sensitive``: the engine hands it to the email channel alone, to the one address
it was issued for; no channel, preference or route hook can change that. Each test fails on
the code before the fix.
"""

from __future__ import annotations

import pytest

from engine import hookimpl
from engine.db import utcnow
from engine.models import User
from engine.notify import Channel, Notice, notify
from engine.testing import DEMO_PASSWORD, Client, seed_people
from identity_support import deliveries, reset_link
from plugins.identity import reset
from plugins.webpush.channel import PushChannel
from plugins.webpush.models import PushDelivery, PushSubscription
from test_webpush import b64, browser_keys, vapid  # noqa: F401

SECRETS_AND_NOTICES = {
    "password_reset",
    "password_changed",
    "email_change_verify",
    "email_change_requested",
    "email_changed",
}


class PartnerSms(Channel):
    """A partner's channel that would take anything it is given."""

    id = "acme-sms"
    label = "SMS"

    def __init__(self):
        self.accepted: list[Notice] = []

    def accept(self, app, notice) -> None:
        self.accepted.append(notice)


class Partner:
    """A partner plugin: the SMS channel, a route hook that wants every notice by SMS and none
    by email, and an observer of every notice."""

    def __init__(self):
        self.sms = PartnerSms()
        self.routed: list[tuple[str, str]] = []
        self.observed: list[Notice] = []

    @hookimpl
    def notification_channels(self, app):
        return [self.sms]

    @hookimpl(tryfirst=True)
    def notification_route(self, app, notice, channel):
        self.routed.append((notice.kind, channel))
        return "skip" if channel == "email" else "send"

    @hookimpl
    def notification_requested(self, app, event):
        self.observed.append(event)


@pytest.fixture
def partner():
    return Partner()


@pytest.fixture
def app(make_app, vapid, partner):  # noqa: F811
    app = make_app(plugins=[("acme", partner)], webpush=vapid)
    seed_people(app)
    return app


def alice() -> User:
    return User.get(User.email == "alice@example.com")


def subscribe_somewhere(user: User) -> PushSubscription:
    """A browser subscribed to the login's pushes (whoever subscribed it: the probe's case)."""
    _, public, auth = browser_keys()
    return PushSubscription.create(
        user=user.id, endpoint="https://push.example.net/elsewhere", p256dh=public, auth=b64(auth)
    )


def kinds(notices) -> set[str]:
    return {n.kind for n in notices}


@pytest.mark.spec("SEC-1")
def test_sec1_a_reset_link_goes_to_the_verified_email_only(app, partner):
    subscribe_somewhere(alice())
    reset.send_reset_link(app, "alice@example.com")  # the worker's half of "forgot password"
    assert [d.address for d in deliveries("password_reset")] == ["alice@example.com"]
    assert "/password/reset?token=" in reset_link()
    assert PushDelivery.select().count() == 0
    assert partner.sms.accepted == []
    assert ("password_reset", "email") not in partner.routed  # no hook may skip or hold it
    [seen] = [n for n in partner.observed if n.kind == "password_reset"]
    assert seen.sensitive and seen.data == {}  # observers never see the link


@pytest.mark.spec("SEC-1", "ACCT-1")
def test_sec1_an_email_change_sends_the_link_to_the_new_address_and_the_notice_to_the_old(
    app, partner
):
    subscribe_somewhere(alice())
    browser = Client(app)
    browser.login("alice@example.com")
    partner.sms.accepted.clear()  # sign-in news is not what this test is about
    asked = browser.post(
        "/api/v1/account/email", json={"email": "alice.new@example.com", "password": DEMO_PASSWORD}
    )
    assert asked.status_code == 202, asked.text
    [verify] = deliveries("email_change_verify")
    assert verify.address == "alice.new@example.com" and verify.user_id is None
    assert [d.address for d in deliveries("email_change_requested")] == ["alice@example.com"]
    token = reset_link("email_change_verify").split("token=")[1]
    assert browser.post("/api/v1/account/email/verify", json={"token": token}).status_code == 200
    assert [d.address for d in deliveries("email_changed")] == ["alice@example.com"]
    assert PushDelivery.select().count() == 0
    assert not kinds(partner.sms.accepted) & SECRETS_AND_NOTICES
    assert all(n.data == {} for n in partner.observed if n.kind in SECRETS_AND_NOTICES)


@pytest.mark.spec("SEC-1")
def test_sec1_other_notices_still_reach_every_channel(app, partner):
    """The rule is about secrets and security: a bill still goes where the customer wants."""
    subscribe_somewhere(alice())
    with app.database.atomic():
        notify(
            app,
            Notice(
                kind="service_expiring",
                key="exp-1",
                category="service",
                mandatory=True,
                user_id=alice().id,
                data={"service": "TV", "service_id": 1, "days": 1, "ends_at": utcnow().isoformat()},
            ),
        )
    assert kinds(partner.sms.accepted) == {"service_expiring"}
    assert PushDelivery.select().count() == 1
    assert [d.address for d in deliveries("service_expiring")] == ["alice@example.com"]


@pytest.mark.spec("SEC-1")
def test_sec1_every_security_notice_is_sensitive_and_has_one_address():
    assert Notice(kind="new_device", key="k", category="security", user_id=1).sensitive
    assert not Notice(kind="invoice_ready", key="k", category="billing", user_id=1).sensitive
    with pytest.raises(ValueError, match="login's own address"):
        Notice(
            kind="password_reset",
            key="k",
            category="security",
            user_id=1,
            email="someone@else.example",
        )
    with pytest.raises(ValueError):
        Notice(
            kind="magic_link",
            key="k",
            category="account",
            sensitive=True,
            user_id=1,
            email="someone@else.example",
        )


@pytest.mark.spec("SEC-1")
def test_sec1_the_push_channel_refuses_a_sensitive_notice_even_when_handed_one(app):
    """Defence in depth: a caller that bypassed ``notify()`` still gets no push."""
    subscribe_somewhere(alice())
    with app.database.atomic():
        PushChannel().accept(
            app,
            Notice(
                kind="password_reset",
                key="direct",
                category="account",
                sensitive=True,
                user_id=alice().id,
                data={
                    "url": "http://portal.test/password/reset?t=x",
                    "minutes": 60,
                    "reason": "forgot",
                },
            ),
        )
    assert PushDelivery.select().count() == 0
