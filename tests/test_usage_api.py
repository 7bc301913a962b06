"""Usage views and intake through the API, the pages and the CSV import (USE-1..7, DASH-1, NOT-2)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner

from engine import hookimpl
from engine.db import utcnow
from engine.models import AuditEvent, StaffUser
from engine.registry import Credit
from engine.testing import Client, PrincipalHeader, as_user, problem
from plugins.usage.commands import usage_group
from plugins.usage.models import Bucket, LedgerEntry, UsageEvent
from plugins.usage.rating import rate
from usage_helpers import GB, bucket, customer_user, event, event_json, service_for

AUTH = ("test-auth", PrincipalHeader())


def staff(permissions: str = "can_post_usage") -> StaffUser:
    return StaffUser.create(
        email=f"ops{StaffUser.select().count()}@example.com", name="Ops", permissions=permissions
    )


@pytest.fixture
def setup(make_app):
    app = make_app(plugins=[AUTH])
    user = customer_user()
    service = service_for(user)
    return app, user, service, as_user(Client(app), staff()), as_user(Client(app), user)


# -- intake: POST /api/v1/staff/usage -------------------------------------------------------------


@pytest.mark.spec("USE-7")
def test_staff_batch_is_rated_once_per_event_id(setup):
    app, user, service, ops, _ = setup
    plan = bucket(service, amount=GB)
    batch = {
        "events": [
            event_json(service, 300 * 10**6, id="net-1"),
            event_json(service, 300 * 10**6, id="net-2"),
        ]
    }
    first = ops.post("/api/v1/staff/usage", json=batch)
    assert first.status_code == 200, first.text
    assert (first.json["rated"], first.json["duplicates"]) == (2, 0)
    assert first.json["results"][0] == {
        "id": "net-1",
        "service_id": service.id,
        "status": "rated",
        "covered": 300 * 10**6,
        "charged": 0,
        "overage": 0,
    }
    again = ops.post("/api/v1/staff/usage", json=batch)
    assert (again.json["rated"], again.json["duplicates"]) == (0, 2)
    assert Bucket.get_by_id(plan.id).remaining == 400 * 10**6
    assert AuditEvent.select().where(AuditEvent.action == "usage.batch_rated").count() == 2


@pytest.mark.spec("USE-7")
def test_a_bad_event_refuses_the_whole_batch_with_field_messages(setup):
    app, user, service, ops, _ = setup
    bucket(service, amount=GB)
    good = event_json(service, 10)
    cases = [
        ({**event_json(service, 10), "quantity": -5}, "quantity"),
        ({**event_json(service, 10), "quantity": 1.5}, "quantity"),
        ({**event_json(service, 10), "type": "fax"}, "type"),
        (event_json(service, 60, "voice") | {"destination": ""}, "destination"),
        (
            {**event_json(service, 10), "occurred_at": (utcnow() + timedelta(days=1)).isoformat()},
            "occurred_at",
        ),
        ({**event_json(service, 10), "service_id": 987654}, "service_id"),
    ]
    for bad, field in cases:
        body = problem(ops.post("/api/v1/staff/usage", json={"events": [good, bad]}))
        assert body["status"] == 422 and field in body["errors"]["events"]["1"], (field, body)
    assert problem(ops.post("/api/v1/staff/usage", json={"events": []}))["errors"]["events"]
    assert problem(ops.post("/api/v1/staff/usage", json=[1]))["status"] == 422
    assert UsageEvent.select().count() == 0 and LedgerEntry.select().count() == 0


def test_batch_size_is_limited_by_the_operator(make_app):
    app = make_app(plugins=[AUTH], usage={"max_batch": 2})
    service = service_for(customer_user())
    ops = as_user(Client(app), staff())
    body = problem(
        ops.post("/api/v1/staff/usage", json={"events": [event_json(service, 1) for _ in range(3)]})
    )
    assert body["errors"]["events"] == ["At most 2 events per batch."]


@pytest.mark.spec("LIM-2")
def test_only_permitted_staff_post_usage(setup):
    app, user, service, _, customer = setup
    batch = {"events": [event_json(service, 10)]}
    assert problem(customer.post("/api/v1/staff/usage", json=batch))["status"] == 401
    assert problem(Client(app).post("/api/v1/staff/usage", json=batch))["status"] == 401
    agent = as_user(Client(app), staff("can_impersonate"))
    assert problem(agent.post("/api/v1/staff/usage", json=batch))["status"] == 403
    admin = as_user(Client(app), staff("admin"))
    assert admin.post("/api/v1/staff/usage", json=batch).status_code == 200


# -- reading: balances, usage, calls ----------------------------------------------------------------


@pytest.mark.spec("USE-1", "USE-2", "USE-3")
def test_balances_in_consumption_order(setup):
    app, user, service, _, customer = setup
    plan = bucket(service, amount=10 * GB, renewable=True, name="10 GB data")
    topup = bucket(service, amount=GB, weight=20, expires_at=utcnow() + timedelta(days=5))
    promo = bucket(service, amount=GB, weight=10, expires_at=utcnow() + timedelta(days=9))
    gone = bucket(service, amount=GB, weight=10, expires_at=utcnow() - timedelta(days=1))
    items = customer.get(f"/api/v1/services/{service.id}/balances").json["items"]
    assert [b["id"] for b in items] == [promo.id, topup.id, plan.id]
    assert items[2]["renews_at"] and items[2]["unit"] == "bytes" and items[2]["weight"] == 30
    assert set(items[0]) >= {"type", "remaining", "initial", "unit", "weight", "expires_at"}
    every = customer.get(
        f"/api/v1/services/{service.id}/balances", params={"include_expired": "true"}
    ).json["items"]
    assert gone.id in [b["id"] for b in every]


@pytest.mark.spec("USE-2", "USE-4", "USE-5")
def test_usage_summary_totals_breakdowns_and_period(setup):
    app, user, service, _, customer = setup
    bucket(service, amount=10 * GB, renewable=True)
    bucket(service, amount=5 * GB, weight=10, expires_at=utcnow() + timedelta(days=3))
    bucket(service, "voice", 600 * 60, scope="domestic")
    bucket(service, "voice", 60 * 60, scope="international")
    bucket(service, "sms", 100, scope="domestic")
    before_period = service.period_start - timedelta(days=1)
    rate(
        app,
        [
            event(service, GB, occurred_at=before_period),  # last period: not "this period"
            event(service, 3 * GB),
            event(service, 120, "voice", destination="onnet", counterparty="+447700900001"),
            event(service, 300, "voice", destination="offnet"),
            event(service, 600, "voice", destination="international", international=True),
            event(service, 30, "voice", destination="special"),
            event(service, 4, "sms"),
            event(service, 1, "sms", international=True),
            event(service, 2, "mms"),
        ],
    )
    body = customer.get(f"/api/v1/services/{service.id}/usage").json
    groups = {g["type"]: g for g in body["balances"]}
    data = groups["data"]
    assert (data["remaining"], data["initial"]) == (11 * GB, 15 * GB)  # 4 GB rated in all
    assert data["used_this_period"] == 3 * GB and data["percent_left"] == 73.3
    assert [b["weight"] for b in data["buckets"]] == [10, 30]  # consumption order
    assert data["expires_at"] is not None and data["low"] is False
    voice = groups["voice"]
    assert voice["by_destination"] == {
        "onnet": 120,
        "offnet": 300,
        "international": 600,
        "special": 30,
    }
    assert voice["used_this_period"] == 450 and voice["overage_this_period"] == 30
    assert voice["remaining"] == 600 * 60 - 420
    assert voice["international"]["remaining"] == 60 * 60 - 600
    assert voice["international"]["used_this_period"] == 600
    sms = groups["sms"]
    assert sms["used_this_period"] == 4 and sms["mms_used_this_period"] == 2
    assert sms["mms_counts_against_sms"] is True and sms["remaining"] == 100 - 4 - 2
    assert sms["international"]["used_this_period"] == 1
    assert body["history"]["days"] == 30 and len(body["history"]["items"]) == 30
    assert body["history"]["items"][-1]["data"] == 3 * GB
    assert (
        len(
            customer.get(f"/api/v1/services/{service.id}/usage", params={"days": 90}).json[
                "history"
            ]["items"]
        )
        == 90
    )
    assert problem(customer.get(f"/api/v1/services/{service.id}/usage", params={"days": 7}))[
        "errors"
    ]["days"]


@pytest.mark.spec("USE-2")
def test_forecast_at_the_current_rate(setup):
    app, user, service, _, customer = setup
    bucket(service, amount=10 * GB, renewable=True)
    now = utcnow()
    # One event on each of the last 7 calendar days, each earlier than now on its day
    # (so the test holds just after midnight too).
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rate(
        app,
        [
            event(
                service, GB // 2, occurred_at=day_start - timedelta(days=d) + (now - day_start) / 2
            )
            for d in range(7)
        ],
    )
    forecast = customer.get(f"/api/v1/services/{service.id}/usage").json["balances"][0]["forecast"]
    assert forecast["daily_rate"] == GB // 2
    # 6.5 GB left at 0.5 GB a day: 13 days, before the renewal in 20 days.
    assert forecast["before_renewal"] is True
    runs_out = forecast["runs_out_at"]
    assert runs_out.startswith((now + timedelta(days=13)).date().isoformat())


@pytest.mark.spec("USE-8")
def test_forecast_counts_a_bucket_only_until_it_expires(setup):
    from datetime import datetime

    app, user, service, _, customer = setup
    now = utcnow()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rate(
        app,
        [
            event(service, GB, occurred_at=day_start - timedelta(days=d) + (now - day_start) / 2)
            for d in range(7)
        ],
    )  # 1 GB a day, before
    # Used first: 5 GB that lapse in 2 days; then 2 GB that last. At 1 GB a day the first
    # lapses with 3 GB unused and the 2 GB run out 2 days later: day 4, not day 7.
    bucket(service, amount=5 * GB, weight=1, expires_at=now + timedelta(days=2))
    bucket(service, amount=2 * GB, weight=2, renewable=True)
    group = customer.get(f"/api/v1/services/{service.id}/usage").json["balances"][0]
    assert group["remaining"] == 7 * GB and group["forecast"]["daily_rate"] == GB
    runs_out = datetime.fromisoformat(group["forecast"]["runs_out_at"])
    assert abs((runs_out - now).total_seconds() / 86400 - 4) < 0.01


@pytest.mark.spec("USE-6")
def test_monetary_credit_with_last_topup_and_auto_topup(make_app):
    class AutoTopups:
        @hookimpl
        def auto_topup_status(self, app, service):
            return {"enabled": True, "threshold": 500, "amount": 1000, "currency": "GBP"}

    app = make_app(plugins=[AUTH, ("autotopups", AutoTopups())])
    user = customer_user()
    service = service_for(
        user, service_type="prepaid", renews_at=None, created_at=utcnow() - timedelta(days=40)
    )
    hook = app.plugins.hook.credit_balance
    hook(app=app, service=service, credit=Credit("monetary", 1000, "GBP", reference="a"))
    hook(app=app, service=service, credit=Credit("monetary", 2000, "GBP", reference="b"))
    rate(app, [event(service, 120, "voice", destination="offnet")])  # 20p from credit
    groups = {
        g["type"]: g
        for g in as_user(Client(app), user)
        .get(f"/api/v1/services/{service.id}/usage")
        .json["balances"]
    }
    credit = groups["monetary"]
    assert credit["remaining"] == 2980 and credit["unit"] == "GBP"
    assert credit["last_topup"]["amount"] == {"amount": 2000, "currency": "GBP"}
    assert credit["auto_topup"] == {
        "enabled": True,
        "threshold": 500,
        "amount": 1000,
        "currency": "GBP",
    }
    assert credit["used_this_period"] == 20
    assert groups["voice"]["used_this_period"] == 120 and groups["voice"]["initial"] == 0


def test_hook_auto_topup_status_is_null_without_a_topups_plugin(setup):
    app, user, service, _, customer = setup
    app.plugins.hook.credit_balance(
        app=app, service=service, credit=Credit("monetary", 500, "GBP", reference="x")
    )
    assert app.plugins.hook.auto_topup_status(app=app, service=service) is None
    groups = customer.get(f"/api/v1/services/{service.id}/usage").json["balances"]
    assert groups[0]["type"] == "monetary" and groups[0]["auto_topup"] is None


@pytest.mark.spec("USE-4")
def test_call_records_only_where_the_operator_enables_them(make_app):
    app = make_app(plugins=[AUTH])
    user = customer_user()
    service = service_for(user)
    assert as_user(Client(app), user).get(f"/api/v1/services/{service.id}/calls").status_code == 404

    app = make_app(plugins=[AUTH], usage={"call_records": True})
    user = customer_user()
    service = service_for(user)
    other = customer_user()
    rate(
        app,
        [
            event(service, 75, "voice", counterparty="+447700900001", id="c1"),
            event(
                service, 20, "voice", destination="special", counterparty="+448710000000", id="c2"
            ),
            event(service, GB, id="d1"),
        ],
    )
    client = as_user(Client(app), user)
    calls = client.get(f"/api/v1/services/{service.id}/calls").json
    assert [c["id"] for c in calls["items"]] == ["c2", "c1"]
    assert (
        calls["items"][1]["seconds"] == 75 and calls["items"][1]["counterparty"] == "+447700900001"
    )
    page = client.get(f"/services/{service.id}/calls").text
    assert "+447700900001" in page and "1:15" in page
    assert (
        as_user(Client(app), other).get(f"/api/v1/services/{service.id}/calls").status_code == 404
    )


def test_openapi_lists_the_services_and_usage_operations(setup):
    app, *_ = setup
    doc = Client(app).get("/api/v1/openapi.json").json
    assert doc["paths"]["/services"]["get"]["tags"] == ["services"]
    assert doc["paths"]["/services/{service_id}/cancel"]["post"]["tags"] == ["services"]
    assert doc["paths"]["/services/{service_id}/usage"]["get"]["tags"] == ["usage"]
    assert "post" in doc["paths"]["/staff/usage"]


# -- pages, cards, alerts ------------------------------------------------------------------------


@pytest.mark.spec("USE-2", "USE-4", "USE-5")
def test_usage_page_has_bars_breakdown_chart_and_table(setup):
    app, user, service, _, customer = setup
    bucket(service, amount=10 * GB, renewable=True, name="10 GB data")
    bucket(service, "voice", 600 * 60, scope="domestic", name="UK minutes")
    rate(app, [event(service, 3 * GB), event(service, 300, "voice")])
    page = customer.get(f"/services/{service.id}/usage")
    assert page.status_code == 200
    html = page.text
    assert '<progress max="10000000000" value="7000000000"' in html
    assert "10 GB data" in html and "UK minutes" in html
    assert 'role="img"' in html and "<desc" in html and "Data used per day" in html
    assert "Show as a table" in html and "3 GB" in html
    voice = customer.get(f"/services/{service.id}/usage", params={"chart": "voice", "days": "90"})
    assert "Call time per day" in voice.text and voice.text.count("<rect") == 90
    assert customer.get(f"/services/{service.id}/usage", params={"chart": "x"}).status_code == 422


@pytest.mark.spec("DASH-1", "NOT-2", "USE-1")
def test_balances_card_and_low_balance_alert(setup):
    app, user, service, _, customer = setup
    bucket(service, amount=10 * GB)
    cards = {c["id"]: c for c in customer.get("/api/v1/dashboard").json["cards"]}
    assert cards["balances"]["data"]["services"][0]["balances"][0]["remaining"] == 10 * GB
    assert not [
        a for a in customer.get("/api/v1/alerts").json["items"] if a["id"].startswith("low-")
    ]
    rate(app, [event(service, 95 * GB // 10)])
    alerts = [a for a in customer.get("/api/v1/alerts").json["items"] if a["id"].startswith("low-")]
    assert alerts == [
        {
            "id": f"low-data-{service.id}",
            "level": "warning",
            "message": f"Low data on {service.name}: 500 MB left.",
            "link": f"/services/{service.id}/usage",
            "dismissible": True,
            "plugin": "usage",
        }
    ]
    assert "Low data on" in customer.get("/").text
    assert service.name in customer.get("/usage").text


# -- bulk import -------------------------------------------------------------------------------------

CSV_HEADER = "id,service_id,type,quantity,occurred_at,destination,international,counterparty\n"


@pytest.mark.spec("USE-7")
def test_csv_import_rates_good_lines_and_reports_bad_ones(setup, tmp_path):
    app, user, service, _, _ = setup
    plan = bucket(service, amount=GB)
    at = (utcnow() - timedelta(hours=1)).isoformat()
    path = tmp_path / "usage.csv"
    path.write_text(
        CSV_HEADER
        + f"x1,{service.id},data,1000,{at},,,\n"
        + f"x2,{service.id},voice,60,{at},onnet,,+447700900001\n"
        + f"x3,{service.id},data,-4,{at},,,\n"
        + f"x4,999999,data,10,{at},,,\n"
        + f"x5,{service.id},sms,1,not-a-date,,,\n"
        + f"x6,{service.id},sms,1,{at},,true,+33612345678\n"
    )
    runner = CliRunner()
    result = runner.invoke(
        usage_group(lambda: app),
        ["import", str(path), "--batch-size", "2", "--errors", str(tmp_path / "errors.csv")],
    )
    assert result.exit_code == 1, result.output
    assert "line 4: quantity:" in result.stderr
    assert "line 5: service_id: No such service." in result.stderr
    assert "line 6: occurred_at:" in result.stderr
    assert "6 lines: 3 rated, 0 duplicates, 3 with errors" in result.stdout
    assert (tmp_path / "errors.csv").read_text().splitlines()[0] == "line,field,message"
    assert Bucket.get_by_id(plan.id).remaining == GB - 1000
    assert {e.event_id for e in UsageEvent.select()} == {"x1", "x2", "x6"}
    again = runner.invoke(usage_group(lambda: app), ["import", str(path)])
    assert "6 lines: 0 rated, 3 duplicates, 3 with errors" in again.stdout
    assert Bucket.get_by_id(plan.id).remaining == GB - 1000
    assert AuditEvent.select().where(AuditEvent.action == "usage.imported").count() == 2


def test_csv_import_dry_run_and_bad_header(setup, tmp_path):
    app, user, service, _, _ = setup
    path = tmp_path / "usage.csv"
    path.write_text(CSV_HEADER + f"y1,{service.id},data,10,{utcnow().isoformat()},,,\n")
    result = CliRunner().invoke(usage_group(lambda: app), ["import", str(path), "--dry-run"])
    assert result.exit_code == 0 and "1 lines checked: 1 valid, 0 with errors" in result.stdout
    assert UsageEvent.select().count() == 0
    path.write_text("id,service,kind\n1,2,3\n")
    result = CliRunner().invoke(usage_group(lambda: app), ["import", str(path)])
    assert result.exit_code == 1 and "missing: service_id, type, quantity" in result.output


def test_csv_import_reports_progress_for_every_line(setup, tmp_path):
    from plugins.usage.importer import import_csv

    app, user, service, _, _ = setup
    at = utcnow().isoformat()
    lines = [f"z{i},{service.id},data,{-1 if i == 3 else 10},{at},,," for i in range(7)]
    path = tmp_path / "usage.csv"
    path.write_text(CSV_HEADER + "\n".join(lines) + "\n")
    seen = []
    with path.open() as f:
        report = import_csv(app, f, batch_size=2, progress=seen.append)
    assert sum(seen) == 7 and report.rated == 6
    assert [str(e) for e in report.errors] == [
        "line 5: quantity: Must be greater than or equal to 1 and less than or equal to "
        "1000000000000000."
    ]
