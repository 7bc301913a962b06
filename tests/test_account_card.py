"""The dashboard's recent-activity card from the account plugin (DASH-1, ACCT-5)."""

import pytest

from engine.audit import record
from engine.context import Context, Principal
from engine.testing import Client, PrincipalHeader, as_user, seed_people


@pytest.fixture
def people(make_app):
    app = make_app(plugins=[("test-auth", PrincipalHeader())])
    return app, seed_people(app)


def act(app, user, action, staff_id=None):
    ctx = Context(
        app=app,
        principal=Principal(
            kind="customer",
            user_id=user.id,
            customer_id=user.contact.customer_id,
            contact_id=user.contact_id,
            impersonator_id=staff_id,
        ),
    )
    record(ctx, action, f"user:{user.id}", {})


@pytest.mark.spec("DASH-1", "ACCT-5")
def test_the_newest_three_events_of_this_customer_only(people):
    app, demo = people
    alice, bob = demo["users"]["alice"], demo["users"]["bob"]
    act(app, alice, "account.updated")
    act(app, alice, "auth.login")
    act(app, alice, "account.password_changed", staff_id=None)
    act(app, alice, "account.updated", staff_id=demo["staff"]["agent"].id)
    act(app, bob, "auth.login")
    client = as_user(Client(app), alice)
    card = next(c for c in client.get("/api/v1/dashboard").json["cards"] if c["id"] == "activity")
    events = card["data"]["events"]
    assert [e["action"] for e in events] == [
        "account.updated",
        "account.password_changed",
        "auth.login",
    ]
    assert [e["by_staff"] for e in events] == [True, False, False]
    page = client.get("/").text
    assert 'data-card="activity"' in page and "Recent activity" in page
    assert 'href="/account/activity"' in page and "(support staff)" in page
    bob_card = next(
        c
        for c in as_user(Client(app), bob).get("/api/v1/dashboard").json["cards"]
        if c["id"] == "activity"
    )
    assert [e["action"] for e in bob_card["data"]["events"]] == ["auth.login"]


def test_a_visitor_gets_no_activity_card(people):
    app, _ = people
    assert 'data-card="activity"' not in Client(app).get("/").text
