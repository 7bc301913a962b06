"""Account → Details (ACCT-1..3, ACCT-5): read-only fields, edit flow, protected fields, activity."""

import pytest

from engine.models import AuditEvent, Contact, Customer
from engine.testing import Client
from identity_support import core_demo, signed_in, user  # noqa: F401


@pytest.mark.spec("ACCT-2")
def test_details_show_the_read_only_fields(core_demo):
    bob = signed_in(core_demo, "bob@example.com")
    body = bob.get("/api/v1/account").json
    assert body["customer"]["number"] == "C-100002" and body["customer"]["kind"] == "business"
    assert body["customer"]["created_at"] and body["email"] == "bob@example.com"
    assert {"number", "kind", "created_at", "email", "status"} <= set(body["read_only"])
    page = bob.get("/account").text
    assert "C-100002" in page and "Business" in page and 'href="/account/edit/phone"' in page


@pytest.mark.spec("ACCT-2")
def test_contacts_and_sites_are_listed(core_demo):
    bob = signed_in(core_demo, "bob@example.com")
    contacts = bob.get("/api/v1/account/contacts").json["items"]
    assert [c["email"] for c in contacts] == ["bob@example.com", "carol@example.com"]
    assert contacts[0]["is_primary"] and not contacts[1]["is_primary"]
    sites = bob.get("/api/v1/account/sites").json["items"]
    assert [s["label"] for s in sites] == ["Shop", "Warehouse"]
    assert "Carol" in bob.get("/account/contacts").text
    assert "Dock Lane" in bob.get("/account/sites").text


@pytest.mark.spec("ACCT-1", "ACCT-3")
def test_edit_phone_page_flow_saves_a_valid_number(core_demo):
    alice = signed_in(core_demo, "alice@example.com")
    form = alice.get("/account/edit/phone")
    assert form.status_code == 200 and "Save changes" in form.text
    saved = alice.post("/account/edit/phone", form={"phone": "07700 900 555"})
    assert saved.headers["location"] == "/account?notice=phone"
    assert "Your phone number has been saved." in alice.get(saved.headers["location"]).text
    assert Contact.get(Contact.email == "alice@example.com").phone == "+447700900555"


@pytest.mark.spec("ACCT-3")
def test_invalid_input_is_refused_beside_the_field_and_nothing_is_saved(core_demo):
    alice = signed_in(core_demo, "alice@example.com")
    refused = alice.post("/account/edit/phone", form={"phone": "call me maybe"})
    assert refused.status_code == 422
    assert 'id="f-phone-error"' in refused.text and "Enter a phone number like" in refused.text
    assert 'aria-invalid="true"' in refused.text and 'value="call me maybe"' in refused.text
    assert Contact.get(Contact.email == "alice@example.com").phone == "+447700900123"
    api = alice.patch("/api/v1/account", json={"phone": "12"})
    assert api.status_code == 422 and "phone" in api.json["errors"]


@pytest.mark.spec("LIM-2", "LIM-1", "ACCT-2")
@pytest.mark.parametrize(
    "field, value",
    [
        ("id", 99),
        ("customer_id", 2),
        ("number", "C-999999"),
        ("kind", "business"),
        ("name", "Mallory"),
        ("created_at", "2020-01-01T00:00:00Z"),
        ("email", "x@example.com"),
        ("balance", 100000),
        ("status", "active"),
        ("api_access", True),
        ("is_primary", False),
    ],
)
def test_protected_fields_cannot_be_set(core_demo, field, value):
    alice = signed_in(core_demo, "alice@example.com")
    answer = alice.patch("/api/v1/account", json={"phone": "+447700900777", field: value})
    assert answer.status_code == 422 and list(answer.json["errors"]) == [field]
    customer = Customer.get(Customer.number == "C-100001")
    assert (customer.kind, customer.name, customer.api_access) == (
        "individual",
        "Alice Example",
        False,
    )
    assert Contact.get(Contact.email == "alice@example.com").phone == "+447700900123"
    assert user("alice@example.com").email == "alice@example.com"


def test_unknown_fields_are_refused_too(core_demo):
    alice = signed_in(core_demo, "alice@example.com")
    answer = alice.patch("/api/v1/account", json={"favourite_colour": "green"})
    assert answer.json["errors"] == {"favourite_colour": ["Unknown field."]}


@pytest.mark.spec("ACCT-5")
def test_every_change_is_in_the_activity_log_with_who_when_and_where(core_demo):
    alice = signed_in(core_demo, "alice@example.com", **{"User-Agent": "Firefox/130"})
    alice.patch("/api/v1/account", json={"phone": "+447700900321", "locale": "zh_Hans"})
    log = alice.get("/api/v1/account/activity").json["items"]
    assert [e["action"] for e in log] == ["account.updated", "login"]
    change = log[0]
    assert change["data"]["changed"] == {
        "phone": ["+447700900123", "+447700900321"],
        "locale": ["", "zh_Hans"],
    }
    # Alice now reads Chinese: the log speaks her language (ACCT-5), "You" included.
    assert change["actor"] == "您" and change["ip"] == "127.0.0.1"
    assert change["description"] == "账户信息已更改"
    assert change["user_agent"] == "Firefox/130" and change["at"] and not change["impersonated"]
    page = alice.get("/account/activity")
    assert page.status_code == 200 and 'data-action="account.updated"' in page.text


@pytest.mark.spec("ACCT-5", "LIM-2")
def test_the_activity_log_holds_only_your_own_account(core_demo):
    signed_in(core_demo, "bob@example.com").patch("/api/v1/account", json={"locale": "en"})
    alice = signed_in(core_demo, "alice@example.com")
    actions = alice.get("/api/v1/account/activity").json["items"]
    assert all(
        AuditEvent.get_by_id(e["id"]).customer_id == user("alice@example.com").contact.customer_id
        for e in actions
    )
    assert "bob@example.com" not in alice.get("/account/activity").text


def test_activity_is_paged_with_a_cursor(core_demo):
    alice = signed_in(core_demo, "alice@example.com")
    for n in range(5):
        alice.patch("/api/v1/account", json={"phone": f"+44770090010{n}"})
    first = alice.get("/api/v1/account/activity?limit=4").json
    second = alice.get(f"/api/v1/account/activity?limit=4&cursor={first['next']}").json
    ids = [e["id"] for e in first["items"] + second["items"]]
    assert len(ids) == 6 == len(set(ids)) and ids == sorted(ids, reverse=True)
    assert second["next"] is None


def test_account_pages_need_a_signed_in_customer(core_demo):
    anonymous = Client(core_demo)
    assert anonymous.get("/account").headers["location"] == "/login?next=%2Faccount"
    assert anonymous.get("/api/v1/account").status_code == 401
