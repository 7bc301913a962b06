"""Service tokens (INT-1): made by a staff administrator on the command line, shown once,
stored hashed, scoped, expiring, revocable; they open the operator API and nothing else, and
no person's sign-in opens the operator API."""

from datetime import timedelta

import pytest
import time_machine
from click.testing import CliRunner

from engine.db import connection, utcnow
from engine.models import AuditEvent
from engine.security import token_hash
from engine.testing import Client, problem
from identity_support import core_demo, signed_in  # noqa: F401
from plugins.operator.commands import token_group
from plugins.operator.models import ServiceToken

CUSTOMER = {"name": "Bob's Bikes Ltd", "kind": "business"}


def cli(app, *args):
    result = CliRunner().invoke(token_group(lambda: app), list(args))
    return result


def make_token(app, *scopes, expires="30d"):
    args = ["create", "--name", "CRM sync", "--by", "admin@example.com", "--expires", expires]
    for scope in scopes or ("read", "customers:write"):
        args += ["--scope", scope]
    result = cli(app, *args)
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def with_token(app, token):
    return Client(app, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.spec("INT-1")
def test_an_administrator_creates_a_token_shown_once_and_stored_hashed(core_demo):
    token = make_token(core_demo, "read", "customers:write")
    assert token.startswith("pst_") and len(token) > 40
    with connection():
        row = ServiceToken.get()
        assert row.token_hash == token_hash(token) and token not in (row.prefix, row.token_hash)
        assert row.scopes == "read customers:write" and row.created_by.email == "admin@example.com"
        assert row.last_used_at is None
    listed = cli(core_demo, "list")
    assert listed.exit_code == 0 and "CRM sync" in listed.output and token not in listed.output
    assert "last used never" in listed.output
    answer = with_token(core_demo, token).put("/api/v1/operator/customers/ACC-1", json=CUSTOMER)
    assert answer.status_code == 201, answer.text
    with connection():
        assert ServiceToken.get().last_used_at is not None
        made = AuditEvent.get(AuditEvent.action == "service_token.created")
        assert made.data["service_token"] == {"id": row.id, "name": "CRM sync"}
        assert made.staff.email == "admin@example.com" and token not in str(made.data)
        # The change the token made names the token.
        created = AuditEvent.get(AuditEvent.action == "customer.created")
        assert created.data["service_token"] == {"id": row.id, "name": "CRM sync"}
        assert created.customer.external_id == "ACC-1"


@pytest.mark.spec("INT-1")
def test_only_an_active_staff_administrator_makes_tokens_with_known_scopes(core_demo):
    refused = cli(
        core_demo, "create", "--name", "x", "--scope", "read", "--by", "agent@example.com"
    )
    assert refused.exit_code != 0 and "not an active staff administrator" in refused.output
    unknown = cli(
        core_demo, "create", "--name", "x", "--scope", "everything", "--by", "admin@example.com"
    )
    assert unknown.exit_code != 0 and "everything" in unknown.output
    too_long = cli(
        core_demo,
        "create",
        "--name",
        "x",
        "--scope",
        "read",
        "--by",
        "admin@example.com",
        "--expires",
        "9999d",
    )
    assert too_long.exit_code != 0 and "730 days" in too_long.output
    with connection():
        assert ServiceToken.select().count() == 0


@pytest.mark.spec("INT-1")
def test_revoked_expired_and_unknown_tokens_are_refused(core_demo):
    token = make_token(core_demo, "read", expires="2d")
    client = with_token(core_demo, token)
    assert client.get("/api/v1/operator/customers").status_code == 200
    with time_machine.travel(utcnow() + timedelta(days=3)):
        expired = client.get("/api/v1/operator/customers")
        assert expired.status_code == 401 and problem(expired)["type"] == "/problems/expired-token"
    with connection():
        token_id = ServiceToken.get().id
    revoked = cli(core_demo, "revoke", str(token_id), "--by", "admin@example.com")
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    answer = client.get("/api/v1/operator/customers")
    assert answer.status_code == 401 and problem(answer)["type"] == "/problems/revoked-token"
    with connection():
        event = AuditEvent.get(AuditEvent.action == "service_token.revoked")
        assert event.data["service_token"]["id"] == token_id
    unknown = with_token(core_demo, "pst_" + "x" * 43).get("/api/v1/operator/customers")
    assert unknown.status_code == 401 and problem(unknown)["type"] == "/problems/invalid-token"
    in_url = Client(core_demo).get("/api/v1/operator/customers", params={"token": token})
    assert in_url.status_code == 401 and problem(in_url)["type"] == "/problems/token-in-url"


@pytest.mark.spec("INT-1")
def test_scopes_limit_what_a_token_may_do(core_demo):
    reader = with_token(core_demo, make_token(core_demo, "read"))
    refused = reader.put("/api/v1/operator/customers/ACC-1", json=CUSTOMER)
    assert refused.status_code == 403 and problem(refused)["type"] == "/problems/missing-scope"
    # The scope is checked before the body: no scope is a 403 even for nonsense.
    assert reader.put("/api/v1/operator/customers/ACC-1", json={"x": 1}).status_code == 403
    writer = with_token(core_demo, make_token(core_demo, "customers:write"))
    assert writer.put("/api/v1/operator/customers/ACC-1", json=CUSTOMER).status_code == 201
    assert writer.get("/api/v1/operator/customers/ACC-1").status_code == 403  # no "read"
    services = writer.put(
        "/api/v1/operator/services/S-1",
        json={"customer_external_id": "ACC-1", "name": "x", "product": "mobile-20gb"},
    )
    assert services.status_code == 403 and "services:write" in problem(services)["title"]
    usage = writer.post("/api/v1/operator/usage", json={"events": []})
    assert usage.status_code == 403 and "usage:write" in problem(usage)["title"]


@pytest.mark.spec("INT-1")
def test_people_never_open_the_operator_api_and_tokens_open_nothing_else(core_demo):
    token = make_token(core_demo, "read", "customers:write")
    # A customer's session and a customer's API key: 401 on the operator API.
    bob = signed_in(core_demo, "bob@example.com")
    assert bob.get("/api/v1/me").status_code == 200
    for path in ("/api/v1/operator/customers", "/api/v1/operator/customers/ACC-1"):
        answer = bob.get(path)
        assert answer.status_code == 401, path
        assert problem(answer)["type"] == "/problems/service-token-required"
    key = bob.post(
        "/api/v1/account/api-keys",
        json={
            "name": "k",
            "access": "read_write",
            "expires_at": (utcnow() + timedelta(days=5)).isoformat(),
        },
    ).json["key"]
    assert with_token(core_demo, key).get("/api/v1/operator/customers").status_code == 401
    # A staff administrator's session (cookie or bearer token): 401 too.
    staff = Client(core_demo)
    staff_token = staff.login("admin@example.com", staff=True)["token"]
    assert staff.get("/api/v1/operator/customers").status_code == 401
    assert with_token(core_demo, staff_token).get("/api/v1/operator/customers").status_code == 401
    # The token on customer and staff routes and pages: nobody is signed in.
    client = with_token(core_demo, token)
    for path in ("/api/v1/me", "/api/v1/services", "/api/v1/staff/me", "/api/v1/staff/customers"):
        assert client.get(path).status_code == 401, path
    assert client.get("/account").status_code in (303, 401)
    with connection():
        assert ServiceToken.get().last_used_at is None  # never even looked up there
