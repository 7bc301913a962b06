"""SEC-3: one maximum for every amount of money a request sends (``engine.api.Amount``,
``MAX_AMOUNT``), whatever the plugin; past it is a field error, never an overflow (the outside
probe of issue 14)."""

from __future__ import annotations

import pytest

from billing_helpers import staff
from engine.api import MAX_AMOUNT
from engine.testing import Client, as_user, problem
from plugins.billing.models import Transaction
from plugins.topups.models import AutoTopup, TopupProduct
from test_topups_auto import app, world  # noqa: F401 - alice's prepaid line with a card
from topups_helpers import page_client


@pytest.mark.spec("SEC-3")
def test_sec3_amounts_past_the_maximum_are_field_errors(app, world):
    """1e20 was an OverflowError (a 500) on the way to the database; 1e23 in a staff
    transaction too; auto top-up stored 1e13 unchecked when switched off."""
    api, service = world["api"], world["service"]
    auto = f"/api/v1/services/{service.id}/auto-topup"
    for body, field in (
        ({"enabled": False, "threshold": 500, "amount": 10**13}, "amount"),
        ({"enabled": False, "threshold": 1e20}, "threshold"),
        ({"enabled": False, "amount": 1e20}, "amount"),
        ({"enabled": True, "threshold": 500, "amount": 1e20}, "amount"),
        ({"enabled": False, "amount": 7}, "amount"),
    ):  # not on offer, even off
        answer = api.put(auto, json=body)
        assert answer.status_code == 422 and field in problem(answer)["errors"], (body, answer.text)
    assert AutoTopup.select().count() == 0
    assert (
        api.put(auto, json={"enabled": False, "threshold": 500, "amount": 1000}).status_code == 200
    )  # in range and on offer: stored, switched off
    # The form, in pounds.
    page = page_client(app, world["user"])
    for field in ("threshold", "amount"):
        answer = page.post(
            f"/services/{service.id}/auto-topup",
            form={"threshold": "5.00", "amount": "10.00", field: "1e20"},
        )
        assert answer.status_code == 422 and "field-error" in answer.text, answer.text[:300]
    assert AutoTopup.get().amount == 1000
    credit = TopupProduct.get(TopupProduct.custom)
    for amount in (1e20, MAX_AMOUNT + 1):
        answer = api.post(
            f"/api/v1/services/{service.id}/topups",
            json={"product_id": credit.id, "amount": amount},
        )
        assert answer.status_code == 422 and "amount" in problem(answer)["errors"], answer.text
    # Staff: charges and credits within ±MAX_AMOUNT.
    clerk = as_user(Client(app), staff("billing"))
    path = f"/api/v1/staff/customers/{world['customer'].id}/transactions"
    for amount in (1e23, 10**18, MAX_AMOUNT + 1, -(MAX_AMOUNT + 1)):
        kind = "charge" if amount > 0 else "credit"
        answer = clerk.post(path, json={"kind": kind, "description": "x", "amount": amount})
        assert answer.status_code == 422 and "amount" in problem(answer)["errors"], answer.text
    assert Transaction.select().count() == 0
    assert (
        clerk.post(
            path, json={"kind": "charge", "description": "x", "amount": MAX_AMOUNT}
        ).status_code
        == 201
    )


MONEY = ("amount", "price", "threshold", "monetary", "fee")


def money_properties(doc: dict) -> list[tuple[str, str, dict]]:
    """(operation, property, schema) of every money-named input of the OpenAPI document."""
    found = []

    def walk(where: str, schema: dict, seen: set):
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[1]
            if name in seen:
                return
            seen = seen | {name}
            schema = doc["components"]["schemas"][name]
        for name, prop in schema.get("properties", {}).items():
            kinds = prop.get("type", [])
            kinds = {kinds} if isinstance(kinds, str) else set(kinds)
            if any(word in name for word in MONEY) and kinds & {"integer", "number"}:
                found.append((where, name, prop))
            walk(where, prop, seen)
            walk(where, prop.get("items", {}), seen)

    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            walk(where, body.get("schema", {}), set())
            for param in op.get("parameters", []):
                if param["in"] == "query" and any(word in param["name"] for word in MONEY):
                    found.append((where, param["name"], param["schema"]))
    return found


@pytest.mark.spec("SEC-3")
def test_sec3_every_money_input_documents_its_maximum(app):
    """Every money field of every request (all plugins) is an ``Amount``: its OpenAPI schema
    states a maximum no larger than MAX_AMOUNT, and the document says what money is."""
    doc = Client(app).get("/api/v1/openapi.json").json
    found = money_properties(doc)
    assert len(found) >= 15, found  # 17 when written: staff, catalogue, top-ups, alerts
    unbounded = [
        (w, n, p)
        for w, n, p in found
        if not (
            p.get("maximum", MAX_AMOUNT + 1) <= MAX_AMOUNT
            and p.get("minimum", -MAX_AMOUNT - 1) >= -MAX_AMOUNT
        )
    ]
    assert not unbounded, unbounded
    assert f"{MAX_AMOUNT:,}" in doc["info"]["description"]
