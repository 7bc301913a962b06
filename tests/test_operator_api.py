"""The operator API (INT-1, INT-3): upserts by external id, syncs by ``updated_since``,
service status changes, usage by the service's external id, and hostile input."""

from datetime import timedelta

import pytest

from engine.db import connection, utcnow
from engine.models import AuditEvent, Contact, Customer, Product, Service
from engine.testing import Client, problem
from identity_support import core_demo  # noqa: F401
from plugins.operator import tokens
from plugins.operator.models import ServiceToken  # noqa: F401
from engine.models import StaffUser

API = "/api/v1/operator"
CUSTOMER = {"name": "Bob's Bikes Ltd", "kind": "business"}


@pytest.fixture
def op(core_demo):
    """A client with a token holding every scope, and a product to sell."""
    with connection():
        admin = StaffUser.get(StaffUser.email == "admin@example.com")
        token, _ = tokens.create(
            core_demo, "CRM", list(tokens.SCOPES), utcnow() + timedelta(days=5), admin
        )
        Product.get_or_create(
            code="mobile-20gb",
            defaults={"name": "Mobile 20 GB", "monthly_fee": 1500, "period_days": 30},
        )
    return Client(core_demo, headers={"Authorization": f"Bearer {token}"})


def events(action):
    with connection():
        return list(AuditEvent.select().where(AuditEvent.action == action))


def service_body(**extra):
    return {
        "customer_external_id": "ACC-1",
        "product": "mobile-20gb",
        "name": "Mobile - +44 7700 900123",
        "identifier": "+447700900123",
        **extra,
    }


def setup_customer(op):
    assert op.put(f"{API}/customers/ACC-1", json=CUSTOMER).status_code == 201


@pytest.mark.spec("INT-1")
def test_a_customer_upsert_is_idempotent(op):
    made = op.put(f"{API}/customers/ACC-1", json=CUSTOMER)
    assert made.status_code == 201 and made.json["change"] == "created"
    assert made.json["external_id"] == "ACC-1" and made.json["number"].startswith("C-")
    again = op.put(f"{API}/customers/ACC-1", json=CUSTOMER)
    assert again.status_code == 200 and again.json["change"] == "unchanged"
    assert again.json["number"] == made.json["number"]
    with connection():
        assert Customer.select().where(Customer.external_id == "ACC-1").count() == 1
    assert len(events("customer.created")) == 1 and events("customer.updated") == []
    renamed = op.put(f"{API}/customers/ACC-1", json={**CUSTOMER, "name": "Bob's Bicycles"})
    assert renamed.status_code == 200 and renamed.json["change"] == "updated"
    assert [e.data["fields"] for e in events("customer.updated")] == [["name"]]
    got = op.get(f"{API}/customers/ACC-1")
    assert got.status_code == 200 and got.json["name"] == "Bob's Bicycles"
    assert "change" not in got.json


@pytest.mark.spec("INT-1")
def test_contacts_sites_and_services_hang_on_the_customer_by_external_id(op):
    setup_customer(op)
    contact = op.put(
        f"{API}/contacts/CRM-7",
        json={
            "customer_external_id": "ACC-1",
            "first_name": "Bob",
            "email": "bob@bikes.example",
            "is_primary": True,
        },
    )
    assert contact.status_code == 201, contact.text
    assert contact.json["customer_external_id"] == "ACC-1" and contact.json["is_primary"]
    site = op.put(
        f"{API}/sites/SITE-1",
        json={"customer_external_id": "ACC-1", "line1": "1 High Street", "city": "London"},
    )
    assert site.status_code == 201 and site.json["country"] == "GB"
    service = op.put(f"{API}/services/447700900123", json=service_body(site_external_id="SITE-1"))
    assert service.status_code == 201, service.text
    body = service.json
    assert body["status"] == "active" and body["product"] == "mobile-20gb"
    assert body["site_external_id"] == "SITE-1" and body["renews_at"] is not None
    with connection():
        row = Service.get(Service.external_id == "447700900123")
        assert row.monthly_fee == 1500 and row.customer.external_id == "ACC-1"
    # A contact cannot move to another customer; an unknown customer is a field error.
    op.put(f"{API}/customers/ACC-2", json=CUSTOMER)
    moved = op.put(
        f"{API}/contacts/CRM-7",
        json={"customer_external_id": "ACC-2", "first_name": "Bob", "email": "bob@bikes.example"},
    )
    assert moved.status_code == 422 and "customer_external_id" in problem(moved)["errors"]
    nobody = op.put(
        f"{API}/sites/SITE-9", json={"customer_external_id": "NOPE", "line1": "x", "city": "y"}
    )
    assert problem(nobody)["errors"] == {"customer_external_id": ["No such customer."]}
    # A site of another customer is not this service's.
    foreign = op.put(
        f"{API}/services/S-2",
        json={**service_body(), "customer_external_id": "ACC-2", "site_external_id": "SITE-1"},
    )
    assert foreign.status_code == 422 and "site_external_id" in problem(foreign)["errors"]
    with connection():
        assert Service.select().where(Service.external_id == "S-2").count() == 0


@pytest.mark.spec("INT-1")
def test_one_primary_contact_per_customer(op):
    setup_customer(op)
    for external_id in ("C-A", "C-B"):
        assert (
            op.put(
                f"{API}/contacts/{external_id}",
                json={
                    "customer_external_id": "ACC-1",
                    "first_name": external_id,
                    "email": f"{external_id.lower()}@example.com",
                    "is_primary": True,
                },
            ).status_code
            == 201
        )
    with connection():
        assert [
            c.external_id
            for c in Contact.select()
            .where(Contact.is_primary)
            .join(Customer)
            .where(Customer.external_id == "ACC-1")
        ] == ["C-B"]


@pytest.mark.spec("INT-1")
def test_services_are_suspended_resumed_and_cancelled_by_status(op):
    setup_customer(op)
    op.put(f"{API}/services/S-1", json=service_body())
    suspended = op.put(
        f"{API}/services/S-1", json=service_body(status="suspended", suspended_reason="unpaid")
    )
    assert suspended.json["status"] == "suspended" and suspended.json["change"] == "updated"
    resumed = op.put(f"{API}/services/S-1", json=service_body(status="active"))
    assert resumed.json["status"] == "active" and resumed.json["suspended_reason"] == ""
    cancelled = op.put(f"{API}/services/S-1", json=service_body(status="cancelled"))
    assert cancelled.json["status"] == "cancelled" and cancelled.json["auto_renew"] is False
    again = op.put(f"{API}/services/S-1", json=service_body(status="active"))
    assert again.status_code == 409 and problem(again)["type"] == "/problems/service-ended"
    changes = [e.data["fields"] for e in events("service.updated")]
    assert len(changes) == 3 and all("status" in f for f in changes)
    assert all(e.data["service_token"]["name"] == "CRM" for e in events("service.updated"))


@pytest.mark.spec("INT-1")
def test_lists_page_with_cursors_and_filter_by_updated_since(op):
    for n in range(5):
        op.put(f"{API}/customers/ACC-{n}", json={**CUSTOMER, "name": f"Customer {n}"})
    first = op.get(f"{API}/customers", params={"limit": "2"})
    assert first.status_code == 200 and first.json["next"]
    seen = [c["external_id"] for c in first.json["items"]]
    cursor = first.json["next"]
    while cursor:
        page = op.get(f"{API}/customers", params={"limit": "2", "cursor": cursor}).json
        seen += [c["external_id"] for c in page["items"]]
        cursor = page["next"]
    # The demo's customers first (fed as the operator would, DEMO-...), then these.
    assert [s for s in seen if s and not s.startswith("DEMO-")] == [f"ACC-{n}" for n in range(5)]
    mark = utcnow()
    op.put(f"{API}/customers/ACC-3", json={**CUSTOMER, "name": "Changed"})
    op.put(f"{API}/customers/ACC-4", json={**CUSTOMER, "name": "Customer 4"})  # unchanged
    since = op.get(f"{API}/customers", params={"updated_since": mark.isoformat()}).json
    assert [c["external_id"] for c in since["items"]] == ["ACC-3"]
    bad = op.get(f"{API}/customers", params={"updated_since": "yesterday"})
    assert bad.status_code == 422 and "updated_since" in problem(bad)["errors"]


@pytest.mark.spec("INT-1")
def test_hostile_input_is_refused_and_nothing_is_half_written(op):
    assert op.get(f"{API}/customers/NOPE").status_code == 404
    assert op.get(f"{API}/customers/" + "x" * 500).status_code == 404
    assert op.get(f"{API}/services/%2Fetc").status_code == 404
    invalid = op.put(f"{API}/customers/ACC-1", json={"name": "", "kind": "alien"})
    assert invalid.status_code == 422
    assert set(problem(invalid)["errors"]) == {"name", "kind"}
    nul = op.put(f"{API}/customers/ACC-1", json={"name": "a\x00b"})
    assert nul.status_code == 422
    deep = '{"name": ' + "[" * 5000 + "]" * 5000 + "}"
    assert op.put(
        f"{API}/customers/ACC-1", body=deep, headers={"Content-Type": "application/json"}
    ).status_code in (400, 422)
    huge = op.put(
        f"{API}/customers/ACC-1",
        body=b'{"name": "' + b"x" * 3_000_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    odd = "Zoë 🚲 \u202e Ltd"
    made = op.put(f"{API}/customers/ACC-ü-🚲", json={**CUSTOMER, "name": odd})
    assert made.status_code == 201 and made.json["name"] == odd
    assert op.get(f"{API}/customers/ACC-ü-🚲").json["name"] == odd
    # A service whose product does not exist: nothing of it is written.
    bad = op.put(
        f"{API}/services/S-1",
        json={**service_body(), "customer_external_id": "ACC-ü-🚲", "product": "nope"},
    )
    assert problem(bad)["errors"] == {"product": ["No such product."]}
    with connection():
        assert Customer.select().where(Customer.external_id == "ACC-1").count() == 0
        assert Service.select().where(Service.external_id == "S-1").count() == 0


@pytest.mark.spec("INT-3")
def test_usage_is_ingested_by_the_services_external_id_once_per_event(op):
    setup_customer(op)
    op.put(f"{API}/services/447700900123", json=service_body())
    at = (utcnow() - timedelta(minutes=5)).isoformat()
    batch = {
        "events": [
            {
                "id": "ev-1",
                "service_external_id": "447700900123",
                "type": "data",
                "quantity": 1000,
                "occurred_at": at,
            },
            {
                "id": "ev-2",
                "service_external_id": "447700900123",
                "type": "sms",
                "quantity": 1,
                "occurred_at": at,
            },
        ]
    }
    first = op.post(f"{API}/usage", json=batch)
    assert first.status_code == 200, first.text
    assert first.json["rated"] == 2 and first.json["duplicates"] == 0
    again = op.post(f"{API}/usage", json=batch)
    assert again.json["rated"] == 0 and again.json["duplicates"] == 2
    unknown = op.post(
        f"{API}/usage",
        json={
            "events": [
                {**batch["events"][0], "id": "ev-3"},
                {**batch["events"][1], "id": "ev-4", "service_external_id": "nobody"},
            ]
        },
    )
    assert unknown.status_code == 422
    assert problem(unknown)["errors"] == {
        "events": {"1": {"service_external_id": ["No such service."]}}
    }
    both = op.post(f"{API}/usage", json={"events": [{**batch["events"][0], "service_id": 1}]})
    assert both.status_code == 422
    with connection():
        from plugins.usage.models import UsageEvent

        assert sorted(e.event_id for e in UsageEvent.select()) == ["ev-1", "ev-2"]


@pytest.mark.spec("INT-3")
def test_the_usage_import_takes_the_services_external_id(op, tmp_path):
    from click.testing import CliRunner
    from plugins.usage.commands import usage_group

    setup_customer(op)
    op.put(f"{API}/services/447700900123", json=service_body())
    at = (utcnow() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = tmp_path / "usage.csv"
    path.write_text(
        "id,service_external_id,type,quantity,occurred_at\n"
        f"cdr-1,447700900123,data,1000,{at}\n"
        f"cdr-2,nobody,data,1000,{at}\n"
        f"cdr-3,,sms,1,{at}\n"
    )
    runner = CliRunner()
    result = runner.invoke(usage_group(lambda: op.app), ["import", str(path)])
    assert "line 3: service_external_id: No such service." in result.output, result.output
    assert "line 4: service_external_id" in result.output
    runner.invoke(usage_group(lambda: op.app), ["import", str(path)])  # a re-run: no change
    with connection():
        from plugins.usage.models import UsageEvent

        assert [e.event_id for e in UsageEvent.select()] == ["cdr-1"]


@pytest.mark.spec("INT-1")
def test_simultaneous_upserts_of_one_new_external_id_make_one_row(op):
    from test_money_concurrency import race

    answers = race(op.app, 6, lambda i: op.put(f"{API}/customers/ACC-RACE", json=CUSTOMER))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 5 + [201], [a.text[:200] for a in answers]
    assert sorted(a.json["change"] for a in answers) == ["created"] + ["unchanged"] * 5
    with connection():
        assert Customer.select().where(Customer.external_id == "ACC-RACE").count() == 1
    assert len(events("customer.created")) == 1


@pytest.mark.spec("INT-1")
def test_without_the_usage_plugin_the_operator_api_works_but_takes_no_usage(make_app):
    from engine.core.demo import seed

    app = make_app(disabled=["usage", "topups"])  # top-ups need usage
    app.demo = {}
    with connection():
        seed(app, app.demo)
        admin = StaffUser.get(StaffUser.email == "admin@example.com")
        token, _ = tokens.create(
            app, "CRM", list(tokens.SCOPES), utcnow() + timedelta(days=5), admin
        )
    client = Client(app, headers={"Authorization": f"Bearer {token}"})
    assert client.put(f"{API}/customers/ACC-9", json=CUSTOMER).status_code == 201
    assert client.post(f"{API}/usage", json={"events": []}).status_code in (404, 405)
    paths = Client(app).get("/api/v1/openapi.json").json["paths"]
    assert "/operator/customers/{external_id}" in paths and "/operator/usage" not in paths
