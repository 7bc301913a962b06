"""Service tokens in the staff console (INT-1): administrators list, make (the secret shown
once) and revoke them, audited by name; each token has a rate limit (429 + Retry-After)."""

import re
from datetime import timedelta

import pytest

from engine.db import connection, utcnow
from engine.models import AuditEvent, StaffUser
from engine.testing import Client
from identity_support import core_demo  # noqa: F401  (fixture)
from plugins.operator import tokens
from plugins.operator.models import ServiceToken

API = "/api/v1/operator/customers"


def staff(app, email: str) -> Client:
    client = Client(app)
    client.login(email, staff=True)
    return client


def made_token(page) -> str:
    found = re.search(r'<code id="new-token">(pst_[^<]+)</code>', page.text)
    assert found, page.text[:2000]
    return found.group(1)


@pytest.mark.spec("INT-1")
def test_an_admin_makes_lists_and_revokes_a_token_in_the_console(core_demo):
    admin = staff(core_demo, "admin@example.com")
    assert admin.get("/staff/tokens").status_code == 200
    made = admin.post(
        "/staff/tokens",
        form={"name": "CRM sync", "scopes": ["read", "customers:write"], "days": "30"},
    )
    assert made.status_code == 201
    secret = made_token(made)
    system = Client(core_demo, headers={"Authorization": f"Bearer {secret}"})
    assert system.get(API).status_code == 200
    listed = admin.get("/staff/tokens")
    assert "CRM sync" in listed.text and secret[:12] in listed.text
    assert secret not in listed.text  # shown once
    with connection():
        row = ServiceToken.get(ServiceToken.name == "CRM sync")
        assert row.scopes == "read customers:write" and row.rate_per_minute is None
        [event] = AuditEvent.select().where(AuditEvent.action == "service_token.created")
        assert event.data["service_token"] == {"id": row.id, "name": "CRM sync"}
    gone = admin.post(f"/staff/tokens/{row.id}/revoke", form={})
    assert gone.status_code == 303 and gone.headers["location"] == "/staff/tokens?done=revoked"
    assert system.get(API).status_code == 401
    with connection():
        [event] = AuditEvent.select().where(AuditEvent.action == "service_token.revoked")
        assert event.data["service_token"]["name"] == "CRM sync"
    assert admin.post("/staff/tokens/99999/revoke", form={}).status_code == 404


@pytest.mark.spec("INT-1")
def test_the_console_refuses_bad_input_and_non_admins(core_demo):
    admin = staff(core_demo, "admin@example.com")
    bad = admin.post("/staff/tokens", form={"name": "", "scopes": ["root"], "days": "9999"})
    assert bad.status_code == 422 and "pst_" not in bad.text
    no_scope = admin.post("/staff/tokens", form={"name": "X", "days": "30"})
    assert no_scope.status_code == 422 and "Choose one or more of the scopes" in no_scope.text
    forged = admin.post("/staff/tokens", form={"name": "X", "scopes": "read"}, csrf=False)
    assert forged.status_code == 403
    agent = staff(core_demo, "agent@example.com")
    assert agent.get("/staff/tokens").status_code == 403
    assert agent.post("/staff/tokens", form={"name": "X", "scopes": "read"}).status_code == 403
    customer = Client(core_demo)
    customer.login("alice@example.com")
    for outsider in (Client(core_demo), customer):  # sent to the staff sign-in
        page = outsider.get("/staff/tokens")
        assert page.status_code == 303 and page.headers["location"].startswith("/staff/login")
    with connection():
        assert ServiceToken.select().count() == 0


@pytest.mark.spec("INT-1")
def test_a_token_over_its_rate_gets_429_with_retry_after(core_demo):
    """The rate set at creation in the console; another token keeps its own count."""
    admin = staff(core_demo, "admin@example.com")
    made = admin.post(
        "/staff/tokens", form={"name": "Tight", "scopes": "read", "rate_per_minute": "2"}
    )
    tight = Client(core_demo, headers={"Authorization": f"Bearer {made_token(made)}"})
    with connection():
        other, _ = tokens.create(
            core_demo,
            "Other",
            ["read"],
            utcnow() + timedelta(days=1),
            StaffUser.get(StaffUser.email == "admin@example.com"),
        )
    assert [tight.get(API).status_code for _ in range(2)] == [200, 200]
    over = tight.get(API)
    assert over.status_code == 429 and 1 <= int(over.headers["Retry-After"]) <= 61
    assert over.headers["content-type"].startswith("application/problem+json")
    assert (
        Client(core_demo, headers={"Authorization": f"Bearer {other}"}).get(API).status_code == 200
    )


@pytest.mark.spec("INT-1")
def test_the_default_rate_is_a_setting(make_app):
    from engine.core.demo import seed

    app = make_app(operator={"token_rate": 1})
    app.demo = {}
    with connection():
        seed(app, app.demo)
        token, _ = tokens.create(
            app,
            "Default",
            ["read"],
            utcnow() + timedelta(days=1),
            StaffUser.get(StaffUser.email == "admin@example.com"),
        )
    client = Client(app, headers={"Authorization": f"Bearer {token}"})
    assert client.get(API).status_code == 200
    assert client.get(API).status_code == 429


@pytest.mark.spec("INT-1")
def test_token_create_takes_a_rate_on_the_command_line(core_demo):
    from click.testing import CliRunner

    from plugins.operator.commands import token_group

    args = ["create", "--name", "Batch", "--scope", "read", "--by", "admin@example.com"]
    run = CliRunner().invoke(token_group(lambda: core_demo), [*args, "--rate", "1"])
    assert run.exit_code == 0, run.output
    client = Client(core_demo, headers={"Authorization": f"Bearer {run.stdout.split()[-1]}"})
    assert [client.get(API).status_code for _ in range(2)] == [200, 429]
    bad = CliRunner().invoke(token_group(lambda: core_demo), [*args, "--rate", "0"])
    assert bad.exit_code != 0
    with connection():
        assert [t.rate_per_minute for t in ServiceToken.select()] == [1]
