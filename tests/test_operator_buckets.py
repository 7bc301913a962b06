"""Buckets through the operator API (INT-1, issue 17): granted by external id to a service
by its external id, adjusted with a ledger row that keeps the ledger netting, expired,
listed; scopes, hostile input, and no bucket routes without the usage plugin."""

from datetime import timedelta

import pytest

from engine.db import connection, utcnow
from engine.models import AuditEvent, Product, StaffUser
from engine.testing import Client, problem
from identity_support import core_demo  # noqa: F401
from plugins.operator import tokens
from plugins.usage.models import Bucket, LedgerEntry

API = "/api/v1/operator"
GB = 2**30
GRANT = {"service_external_id": "S-1", "type": "data", "allowance": 20 * GB, "name": "20 GB"}


def _token(app, scopes):
    with connection():
        admin = StaffUser.get(StaffUser.email == "admin@example.com")
        token, _ = tokens.create(app, "CRM", scopes, utcnow() + timedelta(days=5), admin)
    return Client(app, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def op(core_demo):
    client = _token(core_demo, list(tokens.SCOPES))
    with connection():
        Product.get_or_create(code="m20", defaults={"name": "Mobile 20 GB", "monthly_fee": 1500})
    assert client.put(f"{API}/customers/ACC-1", json={"name": "Bob"}).status_code == 201
    made = client.put(
        f"{API}/services/S-1",
        json={"customer_external_id": "ACC-1", "product": "m20", "name": "Mobile"},
    )
    assert made.status_code == 201, made.text
    return client


def nets(external_id):
    with connection():
        b = Bucket.get(Bucket.external_id == external_id)
        ledger = sum(e.delta for e in LedgerEntry.select().where(LedgerEntry.bucket == b.id))
        return b.remaining == b.initial + ledger


def events(action):
    with connection():
        return list(AuditEvent.select().where(AuditEvent.action == action))


@pytest.mark.spec("INT-1")
def test_int1_a_bucket_grant_is_idempotent(op):
    made = op.put(f"{API}/buckets/B-1", json=GRANT)
    assert made.status_code == 201, made.text
    body = made.json
    assert body["allowance"] == body["remaining"] == 20 * GB and body["unit"] == "bytes"
    assert body["service_external_id"] == "S-1" and body["change"] == "created"
    again = op.put(f"{API}/buckets/B-1", json=GRANT)
    assert again.status_code == 200 and again.json["change"] == "unchanged"
    with connection():
        assert Bucket.select().where(Bucket.external_id == "B-1").count() == 1
    assert len(events("bucket.created")) == 1 and events("bucket.updated") == []
    customer = events("bucket.created")[0].customer_id
    assert customer is not None
    renamed = op.put(f"{API}/buckets/B-1", json={**GRANT, "name": "Twenty", "weight": 10})
    assert renamed.json["change"] == "updated" and renamed.json["weight"] == 10
    # Amounts and type change only with adjust; a bucket does not move.
    more = op.put(f"{API}/buckets/B-1", json={**GRANT, "allowance": GB, "type": "voice"})
    assert set(problem(more)["errors"]) == {"allowance", "type"}
    op.put(
        f"{API}/services/S-2",
        json={"customer_external_id": "ACC-1", "product": "m20", "name": "Two"},
    )
    moved = op.put(f"{API}/buckets/B-1", json={**GRANT, "service_external_id": "S-2"})
    assert "service_external_id" in problem(moved)["errors"]
    nobody = op.put(f"{API}/buckets/B-2", json={**GRANT, "service_external_id": "NOPE"})
    assert problem(nobody)["errors"] == {"service_external_id": ["No such service."]}
    assert op.get(f"{API}/buckets/B-1").json["name"] == "Twenty"


@pytest.mark.spec("INT-1")
def test_int1_adjusting_a_bucket_writes_a_ledger_row_and_it_still_nets(op):
    op.put(f"{API}/buckets/B-1", json=GRANT)
    less = op.post(f"{API}/buckets/B-1/adjust", json={"remaining": 5 * GB, "reason": "fix"})
    assert less.status_code == 200, less.text
    assert less.json["remaining"] == 5 * GB and less.json["change"] == "updated"
    assert nets("B-1")
    bigger = op.post(f"{API}/buckets/B-1/adjust", json={"allowance": 30 * GB})
    assert bigger.json["allowance"] == 30 * GB and bigger.json["remaining"] == 5 * GB
    assert nets("B-1")
    both = op.post(f"{API}/buckets/B-1/adjust", json={"allowance": 40 * GB, "remaining": 15 * GB})
    assert nets("B-1")
    assert both.json["change"] == "updated"
    same = op.post(f"{API}/buckets/B-1/adjust", json={"allowance": 40 * GB, "remaining": 15 * GB})
    assert same.json["change"] == "unchanged"
    with connection():
        kinds = {e.kind for e in LedgerEntry.select()}
    assert kinds == {"adjustment"}
    adjusted = events("bucket.adjusted")
    assert len(adjusted) == 3 and adjusted[0].data["before"]["remaining"] == 20 * GB
    negative = op.post(f"{API}/buckets/B-1/adjust", json={"remaining": -1})
    huge = op.post(f"{API}/buckets/B-1/adjust", json={"allowance": 10**40})
    text_number = op.post(f"{API}/buckets/B-1/adjust", json={"remaining": "5"})
    for answer in (negative, huge, text_number):
        assert answer.status_code == 422
    assert op.post(f"{API}/buckets/NOPE/adjust", json={"remaining": 1}).status_code == 404


@pytest.mark.spec("INT-1")
def test_int1_expiring_a_bucket_and_listing_by_updated_since(op):
    op.put(f"{API}/buckets/B-1", json=GRANT)
    mark = utcnow()
    op.put(f"{API}/buckets/B-2", json={**GRANT, "type": "voice", "allowance": 6000})
    ended = op.post(f"{API}/buckets/B-1/expire")
    assert ended.status_code == 200 and ended.json["expires_at"] is not None
    assert op.post(f"{API}/buckets/B-1/expire").json["change"] == "unchanged"
    assert len(events("bucket.expired")) == 1
    since = op.get(f"{API}/buckets", params={"updated_since": mark.isoformat(), "limit": 1})
    assert since.status_code == 200
    seen = [b["external_id"] for b in since.json["items"]]
    cursor = since.json["next"]
    while cursor:
        page = op.get(f"{API}/buckets", params={"cursor": cursor, "limit": 1}).json
        seen += [b["external_id"] for b in page["items"]]
        cursor = page["next"]
    assert seen == ["B-1", "B-2"]
    mine = op.get(f"{API}/buckets", params={"customer_external_id": "ACC-NOBODY"}).json
    assert mine["items"] == []


@pytest.mark.spec("INT-1")
def test_int1_buckets_need_balances_write_and_refuse_hostile_input(op, core_demo):
    reader = _token(core_demo, ["read", "usage:write", "catalogue:write"])
    for answer in (
        reader.put(f"{API}/buckets/B-1", json=GRANT),
        reader.post(f"{API}/buckets/B-1/adjust", json={"remaining": 1}),
        reader.post(f"{API}/buckets/B-1/expire"),
    ):
        assert answer.status_code == 403 and problem(answer)["type"] == "/problems/missing-scope"
    bad = op.put(
        f"{API}/buckets/B-1",
        json={
            "service_external_id": "S-1",
            "type": "gold",
            "allowance": 2**63,
            "name": "n" * 5000,
            "weight": -5,
        },
    )
    assert set(problem(bad)["errors"]) == {"type", "allowance", "name", "weight"}
    no_amount = op.put(
        f"{API}/buckets/B-1", json={k: v for k, v in GRANT.items() if k != "allowance"}
    )
    assert problem(no_amount)["errors"] == {"allowance": ["Missing data for required field."]}
    odd = op.put(f"{API}/buckets/B-ü-🚲", json={**GRANT, "name": "Zoë \u202e 🚲"})
    assert (
        odd.status_code == 201 and op.get(f"{API}/buckets/B-ü-🚲").json["name"] == "Zoë \u202e 🚲"
    )
    assert op.get(f"{API}/buckets/" + "x" * 500).status_code == 404
    with connection():
        assert Bucket.select().where(Bucket.external_id == "B-1").count() == 0


@pytest.mark.spec("INT-1")
def test_int1_without_usage_there_are_no_bucket_routes(make_app):
    from engine.core.demo import seed

    app = make_app(disabled=["usage", "topups"])
    app.demo = {}
    with connection():
        seed(app, app.demo)
    client = _token(app, ["read", "balances:write", "catalogue:write"])
    assert client.put(f"{API}/buckets/B-1", json=GRANT).status_code in (404, 405)
    assert client.put(f"{API}/products/P-1", json={"name": "P"}).status_code == 201
    paths = Client(app).get("/api/v1/openapi.json").json["paths"]
    assert "/operator/products" in paths and "/operator/buckets" not in paths
