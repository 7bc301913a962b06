"""Portal invitations (INT-2): the operator API invites a contact; the emailed link (read
from the real SMTP delivery) sets a password once, before it expires, and signs them in."""

from datetime import timedelta

import pytest
import time_machine

from engine.db import connection, utcnow
from engine.models import AuditEvent, StaffUser, User
from engine.testing import Client, run_tasks
from identity_support import NEW_PASSWORD, link_in
from plugins.operator import tokens
from plugins.operator.models import Invitation
from tests.mailserver import body_text, smtp  # noqa: F401  (fixture)

API = "/api/v1/operator"
CONTACT = {
    "customer_external_id": "ACC-1",
    "first_name": "Dora",
    "email": "dora@example.com",
}


@pytest.fixture
def core_demo(make_app, smtp):
    """The core demo people, with mail going to a real SMTP server (``smtp.inbox``)."""
    from engine.core.demo import seed

    app = make_app(**smtp.settings())
    app.demo = {}
    app.inbox = smtp.inbox
    with connection():
        seed(app, app.demo)
    return app


@pytest.fixture
def op(core_demo):
    """A client with a token holding every scope, and a customer ACC-1."""
    with connection():
        admin = StaffUser.get(StaffUser.email == "admin@example.com")
        token, _ = tokens.create(
            core_demo, "CRM", list(tokens.SCOPES), utcnow() + timedelta(days=5), admin
        )
    client = Client(core_demo, headers={"Authorization": f"Bearer {token}"})
    assert client.put(f"{API}/customers/ACC-1", json={"name": "Dora's Deli"}).status_code == 201
    return client


def invitation_links(app) -> list[str]:
    """The /invitation links of every invitation email delivered so far, oldest first."""
    run_tasks(app)  # the outbox's worker sends them over SMTP
    return [
        link_in(body_text(m), "/invitation")
        for m in app.inbox.messages
        if m["Subject"] == "You are invited to your customer portal"
    ]


def accept(client: Client, link: str, password: str = NEW_PASSWORD, **extra):
    token = link.split("token=")[1]
    form = {"token": token, "password": password, "password_confirm": password, **extra}
    return client.post("/invitation", form=form)


def events(action):
    with connection():
        return list(AuditEvent.select().where(AuditEvent.action == action))


@pytest.mark.spec("INT-2")
def test_portal_access_sends_a_link_that_creates_the_login_and_signs_in(op):
    made = op.put(f"{API}/contacts/CON-1", json={**CONTACT, "portal_access": True})
    assert made.status_code == 201 and made.json["portal"] == "invited"
    [link] = invitation_links(op.app)
    with connection():
        row = Invitation.get()
        assert row.email == "dora@example.com" and link.split("token=")[1] not in row.token_hash
    visitor = Client(op.app)
    page = visitor.get(link)
    assert page.status_code == 200 and "dora@example.com" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    done = accept(visitor, link)
    assert done.status_code == 303 and done.headers["location"] == "/"
    me = visitor.get("/api/v1/account")
    assert me.status_code == 200, me.text
    assert op.get(f"{API}/contacts/CON-1").json["portal"] == "active"
    [accepted] = events("invitation.accepted")
    with connection():
        assert accepted.user_id == User.get(User.email == "dora@example.com").id
    Client(op.app).login("dora@example.com", NEW_PASSWORD)
    # Used once: the same link now answers a clear page, not a second login.
    again = Client(op.app)
    assert again.get(link).status_code == 410
    gone = accept(again, link, "Other-Pass-2032!")
    assert gone.status_code == 410 and "expired, was already used" in gone.text
    # Sending the same body again invites nobody twice.
    op.put(f"{API}/contacts/CON-1", json={**CONTACT, "portal_access": True})
    assert invitation_links(op.app) == [link]
    assert op.post(f"{API}/contacts/CON-1/invitation").status_code == 409


@pytest.mark.spec("INT-2")
def test_accepting_checks_the_password_rules_and_the_csrf_token(op):
    op.put(f"{API}/contacts/CON-1", json={**CONTACT, "portal_access": True})
    [link] = invitation_links(op.app)
    visitor = Client(op.app)
    visitor.get(link)
    weak = accept(visitor, link, "short")
    assert weak.status_code == 422 and 'aria-invalid="true"' in weak.text
    token = link.split("token=")[1]
    forged = visitor.post(
        "/invitation",
        form={"token": token, "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        csrf=False,
    )
    assert forged.status_code == 403
    with connection():
        assert not User.select().where(User.email == "dora@example.com").exists()
    # Still usable after the refusals; ticking 2FA goes on to its set-up.
    done = accept(visitor, link, setup_2fa="on")
    assert done.status_code == 303 and done.headers["location"] == "/account/2fa/setup"


@pytest.mark.spec("INT-2")
def test_a_link_expires(op):
    with time_machine.travel(utcnow(), tick=False) as clock:
        sent = op.post(f"{API}/contacts/CON-1/invitation")
        assert sent.status_code == 404  # no such contact yet
        op.put(f"{API}/contacts/CON-1", json=CONTACT)
        sent = op.post(f"{API}/contacts/CON-1/invitation")
        assert sent.status_code == 201 and sent.json["status"] == "sent"
        [link] = invitation_links(op.app)
        clock.shift(timedelta(days=7, seconds=1))
        late = Client(op.app)
        assert late.get(link).status_code == 410
        assert accept(late, link).status_code == 410
    with connection():
        assert not User.select().where(User.email == "dora@example.com").exists()


@pytest.mark.spec("INT-2")
def test_sending_again_invalidates_the_old_link_and_delete_revokes(op):
    op.put(f"{API}/contacts/CON-1", json={**CONTACT, "portal_access": True})
    [old] = invitation_links(op.app)
    assert op.post(f"{API}/contacts/CON-1/invitation").status_code == 201
    [new] = set(invitation_links(op.app)) - {old}
    assert accept(Client(op.app), old).status_code == 410
    assert op.delete(f"{API}/contacts/CON-1/invitation").status_code == 204
    assert op.delete(f"{API}/contacts/CON-1/invitation").status_code == 404
    assert accept(Client(op.app), new).status_code == 410
    assert op.get(f"{API}/contacts/CON-1").json["portal"] == "none"
    assert len(events("invitation.sent")) == 2 and len(events("invitation.revoked")) == 1
    # portal_access false revokes a pending invitation too.
    op.post(f"{API}/contacts/CON-1/invitation")
    [last] = set(invitation_links(op.app)) - {old, new}
    op.put(f"{API}/contacts/CON-1", json={**CONTACT, "portal_access": False})
    assert accept(Client(op.app), last).status_code == 410


@pytest.mark.spec("INT-2")
def test_a_link_opens_only_its_own_contact_and_needs_the_scope(op):
    """Isolation: each link creates its own contact's login; a read-only token cannot invite;
    a contact whose address another login uses is invited to join that login (SUP-2), and a
    new-login link whose address a login took meanwhile is refused."""
    op.put(f"{API}/customers/ACC-2", json={"name": "Eve's Eatery"})
    op.put(f"{API}/contacts/CON-1", json={**CONTACT, "portal_access": True})
    op.put(
        f"{API}/contacts/CON-2",
        json={**CONTACT, "customer_external_id": "ACC-2", "first_name": "Eve",
              "email": "eve@example.com", "portal_access": True},
    )  # fmt: skip
    links = invitation_links(op.app)
    assert len(links) == 2
    eve = next(link for link in links if accept(Client(op.app), link).status_code == 303)
    with connection():
        made = User.get(User.email.in_(["dora@example.com", "eve@example.com"]))
        used = Invitation.get(Invitation.used_at.is_null(False))
        assert made.contact_id == used.contact_id and made.email == used.email
    assert eve
    taken = op.put(
        f"{API}/contacts/CON-3",
        json={**CONTACT, "email": "alice@example.com", "portal_access": True},
    )
    assert taken.status_code == 201 and taken.json["portal"] == "invited"  # to join (SUP-2)
    links = invitation_links(op.app)
    # An address another login takes after the invitation was sent: a clear page, not a 500.
    op.put(f"{API}/contacts/CON-4", json={**CONTACT, "email": "fay@example.com"})
    op.post(f"{API}/contacts/CON-4/invitation")
    [fay] = set(invitation_links(op.app)) - set(links)
    with connection():
        User.update(email="fay@example.com").where(User.email == "alice@example.com").execute()
    assert accept(Client(op.app), fay).status_code == 410
    with connection():
        admin = StaffUser.get(StaffUser.email == "admin@example.com")
        reader, _ = tokens.create(op.app, "R", ["read"], utcnow() + timedelta(days=1), admin)
    ro = Client(op.app, headers={"Authorization": f"Bearer {reader}"})
    assert ro.post(f"{API}/contacts/CON-1/invitation").status_code == 403
    assert ro.delete(f"{API}/contacts/CON-1/invitation").status_code == 403
