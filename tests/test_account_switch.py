"""One login, several customer accounts (SUP-2): carol keeps the books at Bob's Bikes
(C-100002, her login's own contact) and runs Carol's Catering (C-100003, a linked contact).
The session acts for one account at a time; switching is audited; a customer the login has
no contact at is a 404 (LIM-2)."""

from datetime import timedelta

import pytest

from engine.db import connection, utcnow
from engine.models import AuditEvent, Contact, Customer, LinkedContact, StaffUser, User
from engine.testing import Client, problem
from identity_support import core_demo, signed_in  # noqa: F401
from plugins.identity.models import Session


def number(name: str) -> int:
    return Customer.get(Customer.number == name).id


def current_number(client: Client) -> str:
    return client.get("/api/v1/account").json["customer"]["number"]


@pytest.mark.spec("SUP-2", "LIM-2")
def test_sup2_the_portal_switches_the_session_to_another_account_of_the_login(core_demo):
    carol = signed_in(core_demo, "carol@example.com")
    home = carol.get("/account").text
    assert 'data-account-switch' in home and "Carol&#39;s Catering · C-100003" in home
    assert "C-100002" in home.split('<footer class="footer">')[1]  # the ID to quote
    assert "Warehouse" in carol.get("/account/sites").text

    answer = carol.post("/account/switch", form={"customer_id": str(number("C-100003"))})
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    page = carol.get("/account").text
    assert "Carol&#39;s Catering" in page and "C-100003" in page.split('<footer class="footer">')[1]
    sites = carol.get("/account/sites").text
    assert "Warehouse" not in sites  # Bob's Bikes' data is gone from view ...
    contacts = carol.get("/api/v1/account/contacts").json["items"]
    assert [c["email"] for c in contacts] == ["carol@catering.example"]
    assert carol.get("/api/v1/me").json["access"] == "primary"  # her role there
    # ... and comes back with the switch back
    carol.post("/account/switch", form={"customer_id": str(number("C-100002"))})
    assert "Warehouse" in carol.get("/account/sites").text
    assert carol.get("/api/v1/me").json["access"] == "member"

    [switched, back] = AuditEvent.select().where(AuditEvent.action == "account.switched")
    assert switched.customer_id == number("C-100003") and switched.data == {"from": "C-100002"}
    assert back.customer_id == number("C-100002") and back.data == {"from": "C-100003"}
    assert switched.user_id == User.get(User.email == "carol@example.com").id
    activity = carol.get("/api/v1/account/activity").json["items"]
    assert activity[0]["description"] == "Switched to this account"


@pytest.mark.spec("SUP-2")
def test_sup2_a_login_with_one_account_sees_no_switcher(core_demo):
    bob = signed_in(core_demo, "bob@example.com")
    assert "data-account-switch" not in bob.get("/account").text
    assert [a["number"] for a in bob.get("/api/v1/me/accounts").json["items"]] == ["C-100002"]


@pytest.mark.spec("SUP-2", "LIM-2")
def test_sup2_the_api_lists_the_accounts_and_switches_the_session(core_demo):
    carol = signed_in(core_demo, "carol@example.com")
    items = carol.get("/api/v1/me/accounts").json["items"]
    assert [(a["number"], a["name"], a["current"]) for a in items] == [
        ("C-100002", "Bob's Bikes Ltd", True),
        ("C-100003", "Carol's Catering", False),
    ]
    switched = carol.post("/api/v1/me/switch", json={"customer_id": items[1]["id"]})
    assert switched.status_code == 200 and switched.json["number"] == "C-100003"
    assert current_number(carol) == "C-100003"
    assert carol.get("/api/v1/account/sites").json["items"] == []
    assert [a["current"] for a in carol.get("/api/v1/me/accounts").json["items"]] == [False, True]
    # A bearer token is the same session: it acts for the account switched to.
    token = (
        Client(core_demo)
        .post(
            "/api/v1/auth/login",
            json={"email": "carol@example.com", "password": "Portico-demo-2026!"},
        )
        .json["token"]
    )
    bearer = Client(core_demo, headers={"Authorization": f"Bearer {token}"})
    assert current_number(bearer) == "C-100002"  # a new session starts on her own account
    bearer.post("/api/v1/me/switch", json={"customer_id": items[1]["id"]})
    assert current_number(bearer) == "C-100003"


@pytest.mark.spec("SUP-2", "LIM-2")
def test_sup2_switching_to_a_customer_the_login_has_no_contact_at_is_a_404(core_demo):
    carol = signed_in(core_demo, "carol@example.com")
    before = AuditEvent.select().count()
    for customer_id in (number("C-100001"), 999999):
        refused = carol.post("/api/v1/me/switch", json={"customer_id": customer_id})
        assert refused.status_code == 404, refused.text
        page = carol.post("/account/switch", form={"customer_id": str(customer_id)})
        assert page.status_code == 404
    bad = carol.post("/account/switch", form={"customer_id": "abc"})
    assert bad.status_code == 422 and 'class="field-error"' in bad.text
    assert problem(carol.post("/api/v1/me/switch", json={}))["status"] == 422
    assert current_number(carol) == "C-100002"
    assert AuditEvent.select().where(AuditEvent.action == "account.switched").count() == 0
    assert AuditEvent.select().count() == before
    alice = signed_in(core_demo, "alice@example.com")
    assert (
        alice.post("/api/v1/me/switch", json={"customer_id": number("C-100003")}).status_code == 404
    )


@pytest.mark.spec("SUP-2", "LIM-2")
def test_sup2_an_unlinked_account_is_gone_from_the_session_at_once(core_demo):
    carol = signed_in(core_demo, "carol@example.com")
    carol.post("/api/v1/me/switch", json={"customer_id": number("C-100003")})
    assert current_number(carol) == "C-100003"
    LinkedContact.delete().execute()  # the operator removed the link (or the contact)
    assert current_number(carol) == "C-100002"
    assert [a["number"] for a in carol.get("/api/v1/me/accounts").json["items"]] == ["C-100002"]


@pytest.mark.spec("SUP-2", "API-1")
def test_sup2_an_api_key_acts_for_the_account_it_was_made_on_and_cannot_switch(core_demo):
    carol = signed_in(core_demo, "carol@example.com")
    carol.post("/api/v1/me/switch", json={"customer_id": number("C-100003")})
    made = carol.post(
        "/api/v1/account/api-keys",
        json={
            "name": "books",
            "access": "read_write",
            "expires_at": (utcnow() + timedelta(days=9)).isoformat(),
        },
    )
    assert made.status_code == 201, made.text
    key = Client(core_demo, headers={"Authorization": f"Bearer {made.json['key']}"})
    assert current_number(key) == "C-100003" and key.get("/api/v1/me").json["access"] == "primary"
    refused = key.post("/api/v1/me/switch", json={"customer_id": number("C-100002")})
    assert refused.status_code == 403 and problem(refused)["type"] == "/problems/api-key-forbidden"
    LinkedContact.delete().execute()
    assert key.get("/api/v1/account").status_code == 401  # no longer hers: the key stops


@pytest.mark.spec("SUP-2", "IMP-1")
def test_sup2_staff_open_the_linked_account_and_stay_on_it(core_demo):
    token = Client(core_demo).login("agent@example.com", staff=True)["token"]
    staff = Client(core_demo, headers={"Authorization": f"Bearer {token}"})
    catering_contact = Contact.get(Contact.email == "carol@catering.example")
    contacts = staff.get(f"/api/v1/staff/customers/{number('C-100003')}/contacts").json["items"]
    assert [(c["email"], c["has_login"]) for c in contacts] == [("carol@catering.example", True)]
    made = staff.post(
        "/api/v1/staff/impersonations",
        json={"contact_id": catering_contact.id, "reason": "Catering invoice question"},
    )
    assert made.status_code == 201, made.text
    browser = Client(core_demo)
    browser.get(made.json["url"].replace("http://portal.test", ""))
    assert current_number(browser) == "C-100003"
    assert "data-account-switch" not in browser.get("/account").text
    refused = browser.post("/api/v1/me/switch", json={"customer_id": number("C-100002")})
    assert refused.status_code == 403
    assert problem(refused)["type"] == "/problems/impersonation-forbidden"
    assert Session.get(Session.kind == "impersonation").contact_id == catering_contact.id


@pytest.mark.spec("SUP-2", "INT-1", "INT-2")
def test_sup2_the_operator_links_a_login_to_a_contact_at_another_customer(core_demo):
    """A contact upsert with the address of an existing login and ``portal_access``: the
    emailed link adds that customer to the login (no new password, no sign-in)."""
    from identity_support import deliveries
    from plugins.operator import tokens

    with connection():
        admin = StaffUser.get(StaffUser.email == "admin@example.com")
        token, _ = tokens.create(
            core_demo, "CRM", list(tokens.SCOPES), utcnow() + timedelta(days=5), admin
        )
    op = Client(core_demo, headers={"Authorization": f"Bearer {token}"})
    api = "/api/v1/operator"
    assert op.put(f"{api}/customers/ACC-9", json={"name": "Alice's Allotment"}).status_code == 201
    made = op.put(
        f"{api}/contacts/CON-9",
        json={
            "customer_external_id": "ACC-9",
            "first_name": "Alice",
            "email": "Alice@Example.com",
            "portal_access": True,
        },
    )
    assert made.status_code == 201 and made.json["portal"] == "invited", made.text
    [sent] = deliveries("invitation")
    assert sent.data["existing_login"] is True and sent.data["customer_name"] == "Alice's Allotment"
    link = "/" + sent.data["url"].split("://", 1)[1].split("/", 1)[1]
    visitor = Client(core_demo)
    page = visitor.get(link)
    assert page.status_code == 200 and "data-join" in page.text and "password" not in page.text
    form = {"token": link.split("token=")[1], "join": "1"}
    # The new-login form (a password) on a link whose address has a login: refused, unspent.
    wrong = {"token": form["token"], "password": "Another-pass-2031!", "password_confirm": "x"}
    assert visitor.post("/invitation", form=wrong).status_code == 410
    joined = visitor.post("/invitation", form=form)
    assert joined.status_code == 303 and joined.headers["location"] == "/login?notice=joined"
    assert "portico_session" not in joined.headers.get("set-cookie", "")  # nobody signed in
    assert visitor.post("/invitation", form=form).status_code == 410
    assert op.get(f"{api}/contacts/CON-9").json["portal"] == "active"
    alice = signed_in(core_demo, "alice@example.com")
    numbers = [a["number"] for a in alice.get("/api/v1/me/accounts").json["items"]]
    assert numbers[0] == "C-100001" and len(numbers) == 2
    assert AuditEvent.select().where(AuditEvent.action == "login.linked").count() == 1
    # One login, one contact per customer: a second contact at ACC-9 with her address is refused.
    again = op.put(
        f"{api}/contacts/CON-10",
        json={"customer_external_id": "ACC-9", "first_name": "A", "email": "alice@example.com"},
    )
    assert again.status_code == 201
    refused = op.post(f"{api}/contacts/CON-10/invitation")
    assert refused.status_code == 409 and problem(refused)["type"] == "/problems/email-taken"
