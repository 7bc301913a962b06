"""ACCT-7: contact roles. The primary contact, and the contacts the primary grants "manage", see
every login, API key and the whole activity log, sign other contacts out and look after the
saved cards; other contacts (members) see and change only their own. The same rules hold in
the JSON API and the portal (``engine.roles``). Bob is the primary contact of Bob's Bikes,
Carol a member.

The outside probe (issue 14) found Carol could revoke Bob's API keys and read the whole
activity log: ``test_a_member_can_neither_revoke_the_primarys_keys_nor_read_the_whole_log``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.db import utcnow
from engine.models import AuditEvent, Contact, User
from engine.security import hash_password
from engine.testing import DEMO_PASSWORD, Client, problem
from billing_helpers import sandbox_card
from identity_support import core_demo, signed_in, user  # noqa: F401
from plugins.identity import apikeys
from plugins.identity.models import ApiKey

KEYS = "/api/v1/account/api-keys"


def key_of(app, email: str, name: str) -> ApiKey:
    u = user(email)
    return apikeys.create(
        u.contact.customer_id, u.id, name, "read_write", utcnow() + timedelta(days=30)
    )[1]


def contact(email: str) -> Contact:
    return Contact.get(Contact.email == email)


def dave(app) -> User:
    """A third contact of Bob's Bikes with a login: a member."""
    bob = user("bob@example.com")
    c = Contact.create(
        customer=bob.contact.customer_id, first_name="Dave", email="dave@example.com"
    )
    return User.create(
        contact=c, email="dave@example.com", password_hash=hash_password(DEMO_PASSWORD)
    )


@pytest.mark.spec("ACCT-7", "API-1", "ACCT-5")
def test_a_member_can_neither_revoke_the_primarys_keys_nor_read_the_whole_log(core_demo):
    bob = signed_in(core_demo, "bob@example.com")
    carol = signed_in(core_demo, "carol@example.com")
    bobs = key_of(core_demo, "bob@example.com", "Bob's export")
    carols = carol.post(
        KEYS,
        json={
            "name": "Carol's sheet",
            "access": "read",
            "expires_at": (utcnow() + timedelta(days=9)).isoformat(),
        },
    )
    assert carols.status_code == 201, carols.text

    # Keys: Carol sees and revokes her own; Bob's is not hers to see (a 404, as foreign ids).
    assert [k["name"] for k in carol.get(KEYS).json["items"]] == ["Carol's sheet"]
    assert carol.delete(f"{KEYS}/{bobs.id}").status_code == 404
    assert carol.post(f"/account/api-keys/{bobs.id}/revoke", form={}).status_code == 404
    assert "Bob&#39;s export" not in carol.get("/account/api-keys").text
    assert ApiKey.get_by_id(bobs.id).revoked_at is None
    assert carol.delete(f"{KEYS}/{carols.json['id']}").json["state"] == "revoked"
    # Bob, the primary contact, sees every key of the account, with who made it.
    assert {(k["name"], k["owner"]) for k in bob.get(KEYS).json["items"]} == {
        ("Bob's export", "bob@example.com"),
        ("Carol's sheet", "carol@example.com"),
    }

    # The activity log: Carol reads what she did; Bob reads the whole account's.
    carol_id = user("carol@example.com").id
    mine = carol.get("/api/v1/account/activity").json["items"]
    assert mine and {e["actor"] for e in mine} == {"You"}
    assert AuditEvent.select().where(AuditEvent.user != carol_id).count() > 0
    assert len(bob.get("/api/v1/account/activity").json["items"]) > len(mine)
    assert "bob@example.com" not in carol.get("/account/activity").text
    assert "carol@example.com" in bob.get("/account/activity").text
    assert carol.get("/api/v1/me").json["access"] == "member"
    assert bob.get("/api/v1/me").json["access"] == "primary"


@pytest.mark.spec("ACCT-7")
def test_the_primary_grants_manage_and_a_manager_acts_over_members_only(core_demo):
    dave(core_demo)
    bob = signed_in(core_demo, "bob@example.com")
    carol = signed_in(core_demo, "carol@example.com")
    daves = key_of(core_demo, "dave@example.com", "Dave's")
    bobs = key_of(core_demo, "bob@example.com", "Bob's")
    carol_id, manage = contact("carol@example.com").id, "/api/v1/account/contacts/{}/manage"

    # Only the primary contact grants it, in a signed-in session of their own.
    assert problem(carol.put(manage.format(carol_id)))["type"] == "/problems/role-forbidden"
    bob_user = user("bob@example.com")
    secret, _ = apikeys.create(
        bob_user.contact.customer_id, bob_user.id, "k", "read_write", utcnow() + timedelta(days=1)
    )
    key = Client(core_demo, headers={"Authorization": f"Bearer {secret}"})
    assert problem(key.put(manage.format(carol_id)))["type"] == "/problems/api-key-forbidden"
    assert bob.put(manage.format(contact("bob@example.com").id)).status_code == 409
    granted = bob.put(manage.format(carol_id))
    assert granted.status_code == 200 and granted.json["access"] == "manager"
    assert (
        AuditEvent.get(AuditEvent.action == "contact.manage_granted").target
        == f"contact:{carol_id}"
    )

    # Carol, now a manager (at once, in the same session): every key, the whole log, the logins.
    assert {k["name"] for k in carol.get(KEYS).json["items"]} >= {"Dave's", "Bob's"}
    contacts = {c["email"]: c for c in carol.get("/api/v1/account/contacts").json["items"]}
    assert contacts["dave@example.com"]["login"] == {
        "email": "dave@example.com",
        "active": True,
        "two_factor": False,
    }
    assert contacts["bob@example.com"]["access"] == "primary"
    # She acts over members, never over the primary contact, and grants nothing herself.
    assert carol.delete(f"{KEYS}/{daves.id}").json["state"] == "revoked"
    refused = carol.delete(f"{KEYS}/{bobs.id}")
    assert refused.status_code == 403 and problem(refused)["type"] == "/problems/role-forbidden"
    assert ApiKey.get_by_id(bobs.id).revoked_at is None
    assert carol.put(manage.format(contact("dave@example.com").id)).status_code == 403

    # Bob takes it back in the portal; Carol is a member again.
    page = bob.post(f"/account/contacts/{carol_id}/manage", form={"grant": "false"})
    assert page.status_code == 303 and "manage-revoked" in page.headers["location"]
    assert AuditEvent.select().where(AuditEvent.action == "contact.manage_revoked").count() == 1
    assert [k["name"] for k in carol.get(KEYS).json["items"]] == []
    assert carol.get("/api/v1/me").json["access"] == "member"


@pytest.mark.spec("ACCT-7", "MOB-1")
def test_the_contacts_page_shows_roles_and_the_buttons_each_role_may_use(core_demo):
    dave(core_demo)
    bob = signed_in(core_demo, "bob@example.com")
    carol = signed_in(core_demo, "carol@example.com")
    as_bob = bob.get("/account/contacts").text
    assert as_bob.count("Let them manage the account") == 2  # Carol and Dave, not Bob
    assert "Portal login: carol@example.com" in as_bob and "Sign them out everywhere" in as_bob
    as_carol = carol.get("/account/contacts").text
    assert "Let them manage the account" not in as_carol and "Sign them out" not in as_carol
    assert "Portal login: carol@example.com" in as_carol and "dave@example.com ·" not in as_carol
    carol_id = contact("carol@example.com").id
    assert (
        bob.post(f"/account/contacts/{carol_id}/manage", form={"grant": "true"}).status_code == 303
    )
    assert "Stop letting them manage the account" in bob.get("/account/contacts").text
    as_manager = carol.get("/account/contacts").text
    assert "Portal login: dave@example.com" in as_manager
    assert as_manager.count("Sign them out everywhere") == 1  # Dave, a member; never Bob
    forged = carol.post(f"/account/contacts/{contact('bob@example.com').id}/sign-out", form={})
    assert forged.status_code == 403


@pytest.mark.spec("ACCT-7", "SEC-4")
def test_a_contact_can_be_signed_out_by_a_higher_role(core_demo):
    bob = signed_in(core_demo, "bob@example.com")
    carol = signed_in(core_demo, "carol@example.com")
    out = "/api/v1/account/contacts/{}/sign-out"
    refused = carol.post(out.format(contact("bob@example.com").id))
    assert refused.status_code == 403 and problem(refused)["type"] == "/problems/role-forbidden"
    assert bob.get("/api/v1/me").status_code == 200
    ended = bob.post(out.format(contact("carol@example.com").id))
    assert ended.status_code == 200 and ended.json == {"ended": 1}
    assert carol.get("/api/v1/me").status_code == 401
    assert AuditEvent.get(AuditEvent.action == "contact.signed_out").data == {"sessions": 1}
    alice_contact = contact("alice@example.com").id  # another customer's: not found
    assert bob.post(out.format(alice_contact)).status_code == 404


@pytest.mark.spec("ACCT-7", "BILL-5")
def test_members_pay_with_the_saved_cards_but_only_managers_remove_them(core_demo):
    customer_id = contact("bob@example.com").customer_id
    card = sandbox_card(core_demo, customer_id)
    other = sandbox_card(core_demo, customer_id, "5555555555554444", default=False)
    carol = signed_in(core_demo, "carol@example.com")
    listed = carol.get("/api/v1/payment-methods")
    assert listed.status_code == 200 and len(listed.json["items"]) == 2
    for answer in (
        carol.delete(f"/api/v1/payment-methods/{card.id}"),
        carol.post(f"/api/v1/payment-methods/{other.id}/default"),
    ):
        assert answer.status_code == 403 and problem(answer)["type"] == "/problems/role-forbidden"
    page = carol.get("/billing/payment-methods").text
    assert "Make default" not in page and "chooses the default card" in page
    assert carol.post(f"/billing/payment-methods/{card.id}/delete", form={}).status_code == 403
    bob = signed_in(core_demo, "bob@example.com")
    bob.put(f"/api/v1/account/contacts/{contact('carol@example.com').id}/manage")
    assert carol.post(f"/api/v1/payment-methods/{other.id}/default").json["is_default"]
    assert carol.delete(f"/api/v1/payment-methods/{card.id}").status_code in (200, 204)
