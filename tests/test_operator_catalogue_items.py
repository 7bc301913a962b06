"""The operator API's top-up and add-on catalogue entries (INT-1, issue 17): upserts by
external id, idempotent and audited, synced by ``updated_since``, scopes, hostile input, and
no routes while their plugin is disabled."""

import pytest

from engine.db import connection, utcnow
from engine.models import Product
from engine.testing import Client, problem
from identity_support import core_demo  # noqa: F401
from plugins.addons.models import AddonProduct
from plugins.topups.models import TopupProduct
from test_operator_catalogue import _token, events, op  # noqa: F401

API = "/api/v1/operator"
DATA_5GB = {
    "name": "5 GB data",
    "service_type": "mobile",
    "kind": "data",
    "quantity": 5 * 2**30,
    "price": 500,
    "currency": "GBP",
    "validity_days": 30,
}
ROAMING = {
    "name": "EU roaming",
    "service_type": "mobile",
    "category": "roaming",
    "recurring_price": 300,
    "period_days": 30,
}


@pytest.mark.spec("INT-1")
def test_int1_a_topup_product_upsert_is_idempotent_audited_and_syncs(op):
    mark = utcnow()
    made = op.put(f"{API}/topup-products/DATA-5GB", json=DATA_5GB)
    assert made.status_code == 201, made.text
    assert made.json["change"] == "created" and made.json["external_id"] == "DATA-5GB"
    assert made.json["code"] == "data-5gb" and made.json["unit"] == "bytes"
    assert made.json["active"] is True and made.json["weight"] == 20  # the model's default
    again = op.put(f"{API}/topup-products/DATA-5GB", json=DATA_5GB)
    assert again.status_code == 200 and again.json["change"] == "unchanged"
    with connection():
        assert TopupProduct.select().where(TopupProduct.external_id == "DATA-5GB").count() == 1
    assert len(events("topup_product.created")) == 1 and events("topup_product.updated") == []
    dearer = op.put(f"{API}/topup-products/DATA-5GB", json={**DATA_5GB, "price": 600})
    assert dearer.json["change"] == "updated" and dearer.json["validity_days"] == 30
    assert [e.data["fields"] for e in events("topup_product.updated")] == [["price"]]
    retired = op.put(
        f"{API}/topup-products/DATA-5GB",
        json={"name": "5 GB data", "service_type": "mobile", "kind": "data", "active": False},
    )
    assert retired.json["active"] is False and retired.json["price"] == 600
    assert op.get(f"{API}/topup-products/DATA-5GB").json["price"] == 600
    # The portal no longer offers a retired entry.
    with connection():
        assert "data-5gb" not in [p.code for p in TopupProduct.listing("mobile")]
    credit = {
        "name": "Credit",
        "service_type": "mobile",
        "kind": "monetary",
        "custom": True,
        "min_amount": 500,
        "max_amount": 5000,
    }
    assert op.put(f"{API}/topup-products/CREDIT", json=credit).status_code == 201
    listed = op.get(f"{API}/topup-products", params={"updated_since": mark.isoformat(), "limit": 1})
    assert [p["external_id"] for p in listed.json["items"]] == ["DATA-5GB"]
    rest = op.get(f"{API}/topup-products", params={"cursor": listed.json["next"]}).json
    assert [p["external_id"] for p in rest["items"]] == ["CREDIT"]
    later = op.get(f"{API}/topup-products", params={"updated_since": utcnow().isoformat()})
    assert later.json["items"] == []


@pytest.mark.spec("INT-1")
def test_int1_topup_product_rules_codes_and_hostile_input(op):
    assert op.put(f"{API}/topup-products/DATA-5GB", json=DATA_5GB).status_code == 201
    moved = op.put(f"{API}/topup-products/DATA-5GB", json={**DATA_5GB, "code": "other"})
    assert problem(moved)["errors"] == {
        "code": ["The code of an entry cannot change; create a new entry."]
    }
    taken = op.put(f"{API}/topup-products/data-5GB", json=DATA_5GB)  # the same code
    assert problem(taken)["errors"] == {"code": ["Another catalogue entry has this code."]}
    # The top-up plugin's own rules of an entry apply, on the entry as it would be saved.
    custom = op.put(f"{API}/topup-products/DATA-5GB", json={**DATA_5GB, "custom": True})
    assert set(problem(custom)["errors"]) == {"custom", "min_amount", "max_amount"}
    free = op.put(f"{API}/topup-products/FREE", json={**DATA_5GB, "code": "free", "price": 0})
    assert problem(free)["errors"] == {
        "price": ["The price, tax included, in minor units: more than 0."]
    }
    rich = {**DATA_5GB, "kind": "monetary", "code": "rich", "quantity": 10**12}
    assert "quantity" in problem(op.put(f"{API}/topup-products/RICH", json=rich))["errors"]
    bad = op.put(
        f"{API}/topup-products/BAD",
        json={
            "name": "x" * 10_000,
            "service_type": "spaceship",
            "kind": "gold",
            "quantity": 10**30,
            "price": -1,
            "currency": "gbp",
            "validity_days": 0,
            "weight": "20",
            "code": "NOT A CODE",
        },
    )
    assert bad.status_code == 422
    assert set(problem(bad)["errors"]) == {
        "name",
        "service_type",
        "kind",
        "quantity",
        "price",
        "currency",
        "validity_days",
        "weight",
        "code",
    }
    # A trailing newline is not let through by a "$" in a pattern.
    newline = op.put(
        f"{API}/topup-products/NL", json={**DATA_5GB, "code": "nl\n", "currency": "GBP\n"}
    )
    assert set(problem(newline)["errors"]) == {"code", "currency"}
    huge = op.put(f"{API}/topup-products/HUGE", json={**DATA_5GB, "price": 10**20})
    assert "price" in problem(huge)["errors"]
    # Odd but printable: accepted and answered as sent; an id that cannot be a code needs one.
    odd = {**DATA_5GB, "name": "Zoë \u202e 🚲"}
    no_code = op.put(f"{API}/topup-products/TOP-ü-🚲", json=odd)
    assert list(problem(no_code)["errors"]) == ["code"]
    made = op.put(f"{API}/topup-products/TOP-ü-🚲", json={**odd, "code": "odd"})
    assert made.status_code == 201 and made.json["name"] == "Zoë \u202e 🚲"
    assert op.get(f"{API}/topup-products/TOP-ü-🚲").json["code"] == "odd"
    assert op.get(f"{API}/topup-products/" + "x" * 500).status_code == 404
    with connection():
        assert TopupProduct.select().where(TopupProduct.code == "rich").count() == 0
        assert TopupProduct.select().where(TopupProduct.external_id == "BAD").count() == 0
    assert len(events("topup_product.created")) == 2


@pytest.mark.spec("INT-1")
def test_int1_an_addon_product_upsert_is_idempotent_and_refuses_hostile_input(op):
    made = op.put(f"{API}/addon-products/ROAM-EU", json=ROAMING)
    assert made.status_code == 201, made.text
    assert made.json["code"] == "roam-eu" and made.json["provisioner"] == "instant"
    assert made.json["one_off_price"] == 0 and made.json["removable"] is True
    again = op.put(f"{API}/addon-products/ROAM-EU", json=ROAMING)
    assert again.json["change"] == "unchanged"
    assert len(events("addon_product.created")) == 1 and events("addon_product.updated") == []
    changed = op.put(f"{API}/addon-products/ROAM-EU", json={**ROAMING, "removable": False})
    assert changed.json["change"] == "updated" and changed.json["removable"] is False
    assert [e.data["fields"] for e in events("addon_product.updated")] == [["removable"]]
    bad = op.put(
        f"{API}/addon-products/BAD",
        json={
            "name": "",
            "service_type": "mobile",
            "category": "teleport",
            "one_off_price": 10**9,
            "recurring_price": 1.5,
            "period_days": 367,
            "provisioner": "instant\n",
            "description": "é" * 1001,
            "position": -1,
        },
    )
    assert set(problem(bad)["errors"]) == {
        "name",
        "category",
        "one_off_price",
        "recurring_price",
        "period_days",
        "provisioner",
        "description",
        "position",
    }
    assert op.put(f"{API}/addon-products/BAD", json={"name": "x"}).status_code == 422
    listed = op.get(f"{API}/addon-products").json["items"]
    assert [p["external_id"] for p in listed] == ["ROAM-EU"]
    with connection():
        assert AddonProduct.get(AddonProduct.external_id == "ROAM-EU").removable is False
        assert AddonProduct.select().where(AddonProduct.external_id == "BAD").count() == 0


@pytest.mark.spec("INT-1")
def test_int1_catalogue_entries_need_the_catalogue_scope_to_write(op, core_demo):
    reader = _token(core_demo, ["read", "services:write"])
    for path, body in (("topup-products/T-1", DATA_5GB), ("addon-products/A-1", ROAMING)):
        refused = reader.put(f"{API}/{path}", json={"name": ""})  # 403 before the 422
        assert refused.status_code == 403
        assert problem(refused)["type"] == "/problems/missing-scope"
        assert reader.get(f"{API}/{path}").status_code == 404
        assert op.put(f"{API}/{path}", json=body).status_code == 201
        assert reader.get(f"{API}/{path}").json["name"] == body["name"]
    writer = _token(core_demo, ["catalogue:write"])
    assert writer.get(f"{API}/topup-products").status_code == 403  # reading needs `read`
    assert writer.put(f"{API}/topup-products/T-1", json=DATA_5GB).json["change"] == "unchanged"


@pytest.mark.spec("INT-1")
def test_int1_without_topups_and_addons_there_are_no_catalogue_entry_routes(make_app):
    from engine.core.demo import seed

    app = make_app(disabled=["topups", "addons"])
    app.demo = {}
    with connection():
        seed(app, app.demo)
    client = _token(app, ["read", "catalogue:write"])
    assert client.put(f"{API}/topup-products/T-1", json=DATA_5GB).status_code in (404, 405)
    assert client.get(f"{API}/addon-products").status_code in (404, 405)
    assert client.put(f"{API}/products/P-1", json={"name": "P"}).status_code == 201
    paths = Client(app).get("/api/v1/openapi.json").json["paths"]
    assert "/operator/products" in paths
    assert "/operator/topup-products/{external_id}" not in paths
    assert "/operator/addon-products" not in paths


def test_int1_the_catalogue_entry_routes_are_in_the_openapi_document(op, core_demo):
    """INT-1: served with their shapes and examples."""
    doc = Client(core_demo).get("/api/v1/openapi.json").json
    put = doc["paths"]["/operator/topup-products/{external_id}"]["put"]
    assert "catalogue:write" in put["description"]
    assert "/operator/addon-products" in doc["paths"]
    body = doc["components"]["schemas"]["OperatorTopupProductIn"]
    assert body["properties"]["kind"]["example"] == "data"
    assert set(body["required"]) == {"name", "service_type", "kind"}


@pytest.mark.spec("INT-5")
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_int5_catalogue_kinds_import_and_export_back_unchanged(make_app, tmp_path, fmt):
    """Products, buckets, top-up and add-on entries are bulk kinds; an export imports back
    unchanged."""
    from click.testing import CliRunner

    from plugins.operator.bulk_commands import export_command, import_command

    app = make_app()
    files = {
        "products": "external_id,name,monthly_fee,period_days,compatible_plans\n"
        "M20,Mobile 20 GB,1500,30,M40/M60\n",  # a list in CSV: its items joined by "/"
        "topup_products": "external_id,name,service_type,kind,quantity,price,validity_days\n"
        "DATA-5GB,5 GB data,mobile,data,5368709120,500,30\n"
        "BAD,x,mobile,gold,1,1,\n",
        "addon_products": "external_id,name,service_type,category,recurring_price,removable\n"
        "ROAM-EU,EU roaming,mobile,roaming,300,false\n",
    }
    for kind, text in files.items():
        path = tmp_path / f"{kind}.csv"
        path.write_text(text, encoding="utf-8")
        result = CliRunner().invoke(import_command(lambda: app), [kind, str(path)])
        failed = 1 if kind == "topup_products" else 0
        assert f"1 created, 0 updated, 0 unchanged, {failed} failed" in result.output, result.output
        if kind == "products":
            with connection():
                assert Product.get(Product.external_id == "M20").compatible_plans == ["M40", "M60"]
        out = tmp_path / f"{kind}-out.{fmt}"
        exported = CliRunner().invoke(export_command(lambda: app), [kind, "--output", str(out)])
        assert exported.exit_code == 0, exported.output
        again = CliRunner().invoke(import_command(lambda: app), [kind, str(out)])
        assert "1 rows: 0 created, 0 updated, 1 unchanged, 0 failed" in again.output, again.output
    rows = {
        "customers": "external_id,name\nACC-1,Bob\n",
        "services": "external_id,customer_external_id,product,name\nSVC-1,ACC-1,M20,Mobile\n",
        "buckets": "external_id,service_external_id,type,allowance\nB-1,SVC-1,data,1000\n",
    }
    for kind, text in rows.items():
        path = tmp_path / f"{kind}.csv"
        path.write_text(text, encoding="utf-8")
        result = CliRunner().invoke(import_command(lambda: app), [kind, str(path)])
        assert "1 created, 0 updated, 0 unchanged, 0 failed" in result.output, result.output
    out = tmp_path / f"buckets-out.{fmt}"
    CliRunner().invoke(export_command(lambda: app), ["buckets", "--output", str(out)])
    again = CliRunner().invoke(import_command(lambda: app), ["buckets", str(out)])
    assert "1 rows: 0 created, 0 updated, 1 unchanged, 0 failed" in again.output, again.output
    with connection():
        assert AddonProduct.get(AddonProduct.external_id == "ROAM-EU").removable is False
        assert TopupProduct.get(TopupProduct.external_id == "DATA-5GB").quantity == 5 * 2**30
