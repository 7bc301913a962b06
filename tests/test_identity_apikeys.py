"""API keys (API-1..3): business customers, shown once, hashed, scoped, expiring, revocable."""

from datetime import timedelta

import pytest
import time_machine

from engine.db import utcnow
from engine.models import AuditEvent, Customer
from engine.security import token_hash
from engine.testing import DEMO_PASSWORD, Client, problem
from identity_support import core_demo, deliveries, signed_in  # noqa: F401
from plugins.identity.models import ApiKey


def expiry(days=30):
    return (utcnow() + timedelta(days=days)).isoformat()


def new_key(client, access="read", days=30, name="Reporting"):
    answer = client.post(
        "/api/v1/account/api-keys",
        json={"name": name, "access": access, "expires_at": expiry(days)},
    )
    assert answer.status_code == 201, answer.text
    return answer.json


def with_key(app, key):
    return Client(app, headers={"Authorization": f"Bearer {key}"})


@pytest.mark.spec("API-1")
def test_a_business_customer_generates_a_key_shown_once_and_stored_hashed(core_demo):
    bob = signed_in(core_demo, "bob@example.com")
    made = new_key(bob)
    key = made["key"]
    assert key.startswith("ptk_") and len(key) > 40
    row = ApiKey.get_by_id(made["id"])
    assert row.key_hash == token_hash(key) and key not in (row.prefix, row.key_hash)
    listed = bob.get("/api/v1/account/api-keys").json["items"]
    assert [k["id"] for k in listed] == [made["id"]] and "key" not in listed[0]
    assert listed[0]["last_used_at"] is None
    me = with_key(core_demo, key).get("/api/v1/me")
    assert me.status_code == 200 and me.json["via"] == "api_key" and me.json["scopes"] == ["read"]
    used = bob.get("/api/v1/account/api-keys").json["items"][0]
    assert used["last_used_at"] is not None and used["last_used_ip"] == "127.0.0.1"
    assert deliveries("api_key_created", "bob@example.com")
    assert AuditEvent.get(AuditEvent.action == "api_key.created").data["prefix"] == row.prefix


@pytest.mark.spec("API-1")
def test_individuals_need_the_operator_to_allow_api_access(core_demo):
    alice = signed_in(core_demo, "alice@example.com")
    refused = alice.post(
        "/api/v1/account/api-keys", json={"name": "x", "access": "read", "expires_at": expiry()}
    )
    assert refused.status_code == 403
    assert problem(refused)["type"] == "/problems/api-access-disabled"
    assert "Contact support" in alice.get("/account/api-keys").text
    Customer.update(api_access=True).where(Customer.number == "C-100001").execute()
    assert new_key(alice)["key"]


@pytest.mark.spec("API-3")
def test_a_read_only_key_reads_but_every_change_is_403(core_demo):
    key = new_key(signed_in(core_demo, "bob@example.com"), access="read")["key"]
    client = with_key(core_demo, key)
    assert client.get("/api/v1/account").status_code == 200
    for method, path, body in [
        ("PATCH", "/api/v1/account", {"locale": "en"}),
        ("POST", "/api/v1/account/password", {}),
        ("DELETE", "/api/v1/account/api-keys/1", None),
    ]:
        answer = client.request(method, path, json=body)
        assert answer.status_code == 403 and problem(answer)["type"] == "/problems/read-only-key"


@pytest.mark.spec("API-2", "API-3")
def test_a_read_write_key_can_change_things_but_not_credentials(core_demo):
    key = new_key(signed_in(core_demo, "bob@example.com"), access="read_write")["key"]
    client = with_key(core_demo, key)
    assert client.patch("/api/v1/account", json={"phone": "+44 7700 900999"}).status_code == 200
    for path, body in [
        (
            "/api/v1/account/api-keys",
            {"name": "more", "access": "read_write", "expires_at": expiry()},
        ),
        (
            "/api/v1/account/password",
            {"current_password": DEMO_PASSWORD, "new_password": "Another-Pass-2031!"},
        ),
        ("/api/v1/account/2fa/setup", None),
    ]:
        answer = client.post(path, json=body)
        assert answer.status_code == 403, path
        assert problem(answer)["type"] == "/problems/api-key-forbidden"


@pytest.mark.spec("API-3")
def test_expired_and_revoked_keys_get_401(core_demo):
    bob = signed_in(core_demo, "bob@example.com")
    short = new_key(bob, days=1)
    revoked = new_key(bob, days=30, name="Old integration")
    assert bob.delete(f"/api/v1/account/api-keys/{revoked['id']}").json["state"] == "revoked"
    gone = with_key(core_demo, revoked["key"]).get("/api/v1/me")
    assert gone.status_code == 401 and problem(gone)["type"] == "/problems/revoked-key"
    assert with_key(core_demo, short["key"]).get("/api/v1/me").status_code == 200
    with time_machine.travel(utcnow() + timedelta(days=1, seconds=1), tick=False):
        late = with_key(core_demo, short["key"]).get("/api/v1/me")
    assert late.status_code == 401 and problem(late)["type"] == "/problems/expired-key"
    unknown = with_key(core_demo, "ptk_" + "x" * 43).get("/api/v1/me")
    assert unknown.status_code == 401
    assert AuditEvent.select().where(AuditEvent.action == "api_key.revoked").count() == 1


@pytest.mark.spec("API-3")
@pytest.mark.parametrize("query", ["api_key={key}", "access_token={key}", "q={key}"])
def test_keys_in_query_strings_are_refused(core_demo, query):
    key = new_key(signed_in(core_demo, "bob@example.com"))["key"]
    answer = Client(core_demo).get("/api/v1/me?" + query.format(key=key))
    assert answer.status_code == 401 and problem(answer)["type"] == "/problems/key-in-url"


@pytest.mark.spec("API-1")
def test_expiry_and_access_are_checked_field_by_field(core_demo):
    bob = signed_in(core_demo, "bob@example.com")
    bad = bob.post(
        "/api/v1/account/api-keys",
        json={
            "name": "",
            "access": "admin",
            "expires_at": (utcnow() - timedelta(days=1)).isoformat(),
        },
    )
    assert bad.status_code == 422
    assert set(bad.json["errors"]) == {"name", "access", "expires_at"}
    too_long = bob.post(
        "/api/v1/account/api-keys", json={"name": "x", "access": "read", "expires_at": expiry(800)}
    )
    assert too_long.json["errors"]["expires_at"] == ["Keys live at most 730 days."]
    assert ApiKey.select().count() == 0


@pytest.mark.spec("API-1")
def test_the_portal_page_generates_shows_once_and_revokes(core_demo):
    bob = signed_in(core_demo, "bob@example.com")
    day = (utcnow() + timedelta(days=10)).date().isoformat()
    made = bob.post(
        "/account/api-keys", form={"name": "Stock sync", "access": "read_write", "expires_at": day}
    )
    assert made.status_code == 201
    row = ApiKey.get()
    shown = made.text.split('id="new-api-key">')[1].split("<")[0]
    assert token_hash(shown) == row.key_hash and row.access == "read_write"
    again = bob.get("/account/api-keys")
    assert shown not in again.text and row.prefix in again.text
    revoked = bob.post(f"/account/api-keys/{row.id}/revoke", form={})
    assert revoked.headers["location"] == "/account/api-keys?notice=revoked"
    assert ApiKey.get_by_id(row.id).revoked_at is not None
    invalid = bob.post(
        "/account/api-keys", form={"name": "", "access": "read", "expires_at": "not a date"}
    )
    assert invalid.status_code == 422 and "Enter a date like 2027-01-31." in invalid.text


def test_another_customers_key_id_is_404(core_demo):
    bob = signed_in(core_demo, "bob@example.com")
    made = new_key(bob)
    Customer.update(api_access=True).execute()
    alice = signed_in(core_demo, "alice@example.com")
    assert alice.delete(f"/api/v1/account/api-keys/{made['id']}").status_code == 404
    assert ApiKey.get_by_id(made["id"]).revoked_at is None


@pytest.mark.spec("API-1")
@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/Los_Angeles"])
def test_the_expiry_day_chosen_is_the_day_shown_in_any_time_zone(core_demo, zone):
    from zoneinfo import ZoneInfo
    from engine.models import User

    User.update(timezone=zone).where(User.email == "bob@example.com").execute()
    bob = signed_in(core_demo, "bob@example.com")
    day = (utcnow() + timedelta(days=10)).date()
    assert (
        bob.post(
            "/account/api-keys",
            form={"name": "Sync", "access": "read", "expires_at": day.isoformat()},
        ).status_code
        == 201
    )
    local = ApiKey.get().expires_at.astimezone(ZoneInfo(zone))
    assert (local.date(), local.hour, local.minute) == (day, 23, 59)  # the end of that day there
