"""The operator API's products and service actions (INT-1, issue 17): upserts of plans by
external id with their compatible plans, suspend/resume/cancel/expire/change-plan, scopes,
hostile input."""

from datetime import timedelta

import pytest

from engine.db import connection, utcnow
from engine.models import AuditEvent, Product, Service, StaffUser
from engine.testing import Client, problem
from identity_support import core_demo  # noqa: F401
from plugins.operator import tokens

API = "/api/v1/operator"
PLAN = {"name": "Mobile 20 GB", "code": "m20", "monthly_fee": 1500, "period_days": 30}


def _token(app, scopes):
    with connection():
        admin = StaffUser.get(StaffUser.email == "admin@example.com")
        token, _ = tokens.create(app, "CRM", scopes, utcnow() + timedelta(days=5), admin)
    return Client(app, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def op(core_demo):
    return _token(core_demo, list(tokens.SCOPES))


def events(action):
    with connection():
        return list(AuditEvent.select().where(AuditEvent.action == action))


def plans_and_service(op):
    """Two plans, M20 may switch to M50 (not back), and a service on M20."""
    assert op.put(f"{API}/products/M50", json={**PLAN, "code": "m50", "monthly_fee": 2500})
    made = op.put(f"{API}/products/M20", json={**PLAN, "compatible_plans": ["M50"]})
    assert made.status_code == 201, made.text
    assert op.put(f"{API}/customers/ACC-1", json={"name": "Bob"}).status_code == 201
    service = op.put(
        f"{API}/services/S-1",
        json={"customer_external_id": "ACC-1", "product": "m20", "name": "Mobile"},
    )
    assert service.status_code == 201, service.text


@pytest.mark.spec("INT-1")
def test_int1_a_product_upsert_is_idempotent_and_syncs(op):
    mark = utcnow()
    made = op.put(f"{API}/products/M20", json={**PLAN, "compatible_plans": ["M50", "M50"]})
    assert made.status_code == 201 and made.json["change"] == "created"
    assert made.json["compatible_plans"] == ["M50"] and made.json["external_id"] == "M20"
    again = op.put(f"{API}/products/M20", json={**PLAN, "compatible_plans": ["M50"]})
    assert again.status_code == 200 and again.json["change"] == "unchanged"
    with connection():
        assert Product.select().where(Product.external_id == "M20").count() == 1
    assert len(events("product.created")) == 1 and events("product.updated") == []
    dearer = op.put(f"{API}/products/M20", json={**PLAN, "monthly_fee": 1700})
    assert dearer.json["change"] == "updated" and dearer.json["compatible_plans"] == ["M50"]
    assert [e.data["fields"] for e in events("product.updated")] == [["monthly_fee"]]
    assert op.get(f"{API}/products/M20").json["monthly_fee"] == 1700
    # The code defaults to the external id; one code per product.
    assert op.put(f"{API}/products/plan-x", json={"name": "X"}).json["code"] == "plan-x"
    taken = op.put(f"{API}/products/OTHER", json={**PLAN})
    assert problem(taken)["errors"] == {"code": ["Another product has this code."]}
    listed = op.get(f"{API}/products", params={"updated_since": mark.isoformat(), "limit": 1})
    assert [p["external_id"] for p in listed.json["items"]] == ["M20"]
    rest = op.get(f"{API}/products", params={"cursor": listed.json["next"]}).json
    assert "plan-x" in [p["external_id"] for p in rest["items"]]


@pytest.mark.spec("INT-1")
def test_int1_products_need_the_catalogue_scope_and_refuse_hostile_input(op, core_demo):
    reader = _token(core_demo, ["read", "services:write"])
    refused = reader.put(f"{API}/products/M20", json={"name": ""})  # 403 before the 422
    assert refused.status_code == 403 and problem(refused)["type"] == "/problems/missing-scope"
    assert reader.get(f"{API}/products/M20").status_code == 404
    bad = op.put(
        f"{API}/products/M20",
        json={
            "name": "x" * 10_000,
            "monthly_fee": 10**30,
            "period_days": 0,
            "currency": "gbp",
            "compatible_plans": ["a/b"] + ["P"] * 200,
        },
    )
    assert bad.status_code == 422
    assert set(problem(bad)["errors"]) == {
        "name",
        "monthly_fee",
        "period_days",
        "currency",
        "compatible_plans",
    }
    assert op.put(f"{API}/products/M20", json={"name": "x", "monthly_fee": "12"}).status_code == 422
    itself = op.put(f"{API}/products/M20", json={**PLAN, "compatible_plans": ["M20"]})
    assert "compatible_plans" in problem(itself)["errors"]
    odd = op.put(f"{API}/products/PLAN-ü-🚲", json={"name": "Zoë \u202e 🚲", "code": "odd"})
    assert odd.status_code == 201 and odd.json["name"] == "Zoë \u202e 🚲"
    assert op.get(f"{API}/products/" + "x" * 500).status_code == 404
    with connection():
        assert Product.select().where(Product.external_id == "M20").count() == 0


@pytest.mark.spec("INT-1")
def test_int1_service_actions_suspend_resume_cancel_with_409_for_illegal_ones(op):
    plans_and_service(op)
    suspended = op.post(f"{API}/services/S-1/suspend", json={"reason": "unpaid"})
    assert suspended.status_code == 200, suspended.text
    assert (
        suspended.json["status"] == "suspended" and suspended.json["suspended_reason"] == "unpaid"
    )
    again = op.post(f"{API}/services/S-1/suspend", json={"reason": "unpaid"})
    assert again.json["change"] == "unchanged"
    resumed = op.post(f"{API}/services/S-1/resume", json={})
    assert resumed.json["status"] == "active" and resumed.json["suspended_reason"] == ""
    cancelled = op.post(f"{API}/services/S-1/cancel", json={})
    assert cancelled.json["status"] == "cancelled" and cancelled.json["auto_renew"] is False
    assert cancelled.json["expires_at"] is not None
    refused = op.post(f"{API}/services/S-1/resume", json={})
    assert refused.status_code == 409 and problem(refused)["type"] == "/problems/service-ended"
    assert op.post(f"{API}/services/S-1/expire", json={}).status_code == 409
    assert op.post(f"{API}/services/S-1/explode", json={}).status_code in (404, 405)
    assert op.post(f"{API}/services/NOPE/suspend", json={}).status_code == 404
    changes = [e.data["fields"] for e in events("service.updated")]
    assert len(changes) == 3 and all("status" in f for f in changes)
    with connection():
        assert Service.get(Service.external_id == "S-1").status == "cancelled"


@pytest.mark.spec("INT-1")
def test_int1_resuming_an_active_service_is_unchanged_and_expire_ends_it(op):
    plans_and_service(op)
    assert op.post(f"{API}/services/S-1/resume", json={}).json["change"] == "unchanged"
    expired = op.post(f"{API}/services/S-1/expire", json={})
    assert expired.json["status"] == "expired" and expired.json["change"] == "updated"
    suspend = op.post(f"{API}/services/S-1/suspend", json={})
    assert suspend.status_code == 409


@pytest.mark.spec("INT-1")
def test_int1_change_plan_only_to_a_compatible_plan(op, core_demo):
    plans_and_service(op)
    missing = op.post(f"{API}/services/S-1/change-plan", json={})
    assert problem(missing)["errors"] == {
        "product_external_id": ["Missing data for required field."]
    }
    unknown = op.post(f"{API}/services/S-1/change-plan", json={"product_external_id": "NOPE"})
    assert problem(unknown)["errors"] == {"product_external_id": ["No such product."]}
    op.put(f"{API}/products/M99", json={**PLAN, "code": "m99"})
    incompatible = op.post(f"{API}/services/S-1/change-plan", json={"product_external_id": "M99"})
    assert (
        incompatible.status_code == 422 and "product_external_id" in problem(incompatible)["errors"]
    )
    with connection():  # a downgrade the customer scheduled: the operator's change replaces it
        Service.update(pending_plan="M10").where(Service.external_id == "S-1").execute()
    switched = op.post(f"{API}/services/S-1/change-plan", json={"product_external_id": "M50"})
    assert switched.status_code == 200 and switched.json["product"] == "m50"
    with connection():
        service = Service.get(Service.external_id == "S-1")
        assert service.monthly_fee == 2500 and service.pending_plan is None
    same = op.post(f"{API}/services/S-1/change-plan", json={"product_external_id": "M50"})
    assert same.json["change"] == "unchanged"
    back = op.post(f"{API}/services/S-1/change-plan", json={"product_external_id": "M20"})
    assert back.status_code == 422  # M50 lists no compatible plans
    # Actions need services:write.
    reader = _token(core_demo, ["read", "catalogue:write"])
    assert reader.post(f"{API}/services/S-1/suspend", json={}).status_code == 403
    assert [e.data["fields"] for e in events("service.updated")] == [
        ["monthly_fee", "pending_plan", "product"]
    ]


@pytest.mark.spec("INT-1")
def test_int1_the_new_routes_are_in_the_openapi_document(op):
    paths = Client(op.app).get("/api/v1/openapi.json").json["paths"]
    for path in (
        "/operator/products",
        "/operator/products/{external_id}",
        "/operator/services/{external_id}/change-plan",
        "/operator/buckets/{external_id}/adjust",
    ):
        assert path in paths, path
