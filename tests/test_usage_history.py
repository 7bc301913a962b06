"""Usage history for any range of days, in the portal and the API, with CSV downloads (USE-8)."""

from __future__ import annotations

import csv
import inspect
import io
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from engine import csvexport
from engine.db import utcnow
from engine.testing import Client, PrincipalHeader, as_user, problem
from plugins.usage import history
from plugins.usage.models import UsageEvent
from usage_helpers import GB, bucket, customer_user, service_for

AUTH = ("test-auth", PrincipalHeader())
TOKYO = ZoneInfo("Asia/Tokyo")  # UTC+9 all year: a day there starts at 15:00 UTC the day before


def at(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def used(service, when: datetime, quantity: int = 1, type: str = "data", **values) -> UsageEvent:
    values.setdefault("covered", quantity)
    return UsageEvent.create(
        event_id=f"h-{service.id}-{UsageEvent.select().count()}",
        service=service.id,
        type=type,
        quantity=quantity,
        occurred_at=when,
        **values,
    )


@pytest.fixture
def setup(make_app):
    app = make_app(plugins=[AUTH])
    user = customer_user()
    user.timezone = "Asia/Tokyo"
    user.save()
    service = service_for(user)
    return app, user, service, as_user(Client(app), user)


def around_a_tokyo_day(service) -> dict[str, UsageEvent]:
    """Events either side of both ends of 2026-03-10 in Tokyo."""
    return {
        "before": used(service, at(2026, 3, 9, 14, 59, 59), 1),  # 9 March, 23:59:59 in Tokyo
        "first": used(service, at(2026, 3, 9, 15, 0, 0), 10),  # 10 March, 00:00 in Tokyo
        "last": used(service, at(2026, 3, 10, 14, 59, 59), 100),  # 10 March, 23:59:59
        "after": used(service, at(2026, 3, 10, 15, 0, 0), 1000),  # 11 March, 00:00
    }


# -- the API ---------------------------------------------------------------------------------


@pytest.mark.spec("USE-8")
def test_events_of_a_range_are_the_customers_days_both_ends_included(setup):
    app, user, service, client = setup
    ev = around_a_tokyo_day(service)
    url = f"/api/v1/services/{service.id}/usage/events"
    answer = client.get(url, params={"from": "2026-03-10", "to": "2026-03-10"})
    assert answer.status_code == 200, answer.text
    body = answer.json
    assert (body["from"], body["to"]) == ("2026-03-10", "2026-03-10")
    assert [e["id"] for e in body["items"]] == [ev["last"].event_id, ev["first"].event_id]
    assert body["items"][0]["unit"] == "bytes" and body["items"][0]["covered"] == 100
    # Three days: newest first, paged by the cursor without leaving the range.
    wide = {"from": "2026-03-09", "to": "2026-03-11", "limit": 3}
    first = client.get(url, params=wide).json
    assert [e["quantity"] for e in first["items"]] == [1000, 100, 10] and first["next"]
    rest = client.get(url, params={**wide, "cursor": first["next"]}).json
    assert [e["quantity"] for e in rest["items"]] == [1] and rest["next"] is None
    # Only one type.
    used(
        service, at(2026, 3, 10, 3), 60, "voice", destination="onnet", counterparty="+447700900001"
    )
    calls = client.get(url, params={"from": "2026-03-10", "to": "2026-03-10", "type": "voice"})
    assert [(e["type"], e["unit"]) for e in calls.json["items"]] == [("voice", "seconds")]


@pytest.mark.spec("USE-8")
def test_daily_totals_of_a_range_in_the_customers_time_zone(setup):
    app, user, service, client = setup
    around_a_tokyo_day(service)
    used(service, at(2026, 3, 10, 1), 5, "monetary", covered=5)
    used(service, at(2026, 3, 10, 2), 30, "sms", charged=25, covered=0)
    answer = client.get(
        f"/api/v1/services/{service.id}/usage/history",
        params={"from": "2026-03-08", "to": "2026-03-11"},
    )
    assert answer.status_code == 200, answer.text
    days = {d["date"]: d for d in answer.json["items"]}
    assert list(days) == ["2026-03-08", "2026-03-09", "2026-03-10", "2026-03-11"]
    assert [days[d]["data"] for d in days] == [0, 1, 110, 1000]
    assert days["2026-03-10"]["monetary"] == 5 and days["2026-03-10"]["charged"] == 25
    assert days["2026-03-10"]["sms"] == 30


@pytest.mark.spec("USE-8")
def test_without_dates_the_range_is_the_current_period(setup):
    app, user, service, client = setup
    used(service, utcnow() - timedelta(days=11), 7)  # before the period began (10 days ago)
    inside = used(service, utcnow() - timedelta(days=2), 3)
    body = client.get(f"/api/v1/services/{service.id}/usage/events").json
    today = utcnow().astimezone(TOKYO).date()
    assert body["to"] == today.isoformat()
    assert body["from"] == service.period_start.astimezone(TOKYO).date().isoformat()
    assert [e["id"] for e in body["items"]] == [inside.event_id]
    daily = client.get(f"/api/v1/services/{service.id}/usage/history").json["items"]
    assert len(daily) == 11 and daily[-1]["date"] == today.isoformat()
    # Only "to", before the period: the 30 days ending then.
    only_to = client.get(
        f"/api/v1/services/{service.id}/usage/history", params={"to": "2026-01-31"}
    ).json
    assert (only_to["from"], len(only_to["items"])) == ("2026-01-02", 30)


@pytest.mark.spec("USE-8")
@pytest.mark.parametrize(
    "params, field",
    [
        ({"from": "2026-03-11", "to": "2026-03-10"}, "from"),  # reversed
        ({"from": "2025-01-01", "to": "2026-01-02"}, "to"),  # 367 days
        ({"from": "2026-02-30"}, "from"),  # no such day
        ({"from": "yesterday"}, "from"),
        ({"to": "0001-01-01"}, "to"),  # a day no time zone can hold
        ({"to": "9999-12-31"}, "to"),
        ({"type": "fax"}, "type"),
    ],
)
def test_a_range_that_cannot_be_shown_is_a_422_with_the_field(setup, params, field):
    app, user, service, client = setup
    for path in ("usage/events", "usage/events.csv", "usage/history"):
        if path == "usage/history" and field == "type":
            continue
        answer = client.get(f"/api/v1/services/{service.id}/{path}", params=params)
        assert answer.status_code == 422, (path, answer.text)
        assert field in problem(answer)["errors"], path


@pytest.mark.spec("USE-8")
def test_a_year_and_a_day_is_the_longest_range(setup):
    app, user, service, client = setup
    answer = client.get(
        f"/api/v1/services/{service.id}/usage/history",
        params={"from": "2024-01-01", "to": "2024-12-31"},  # a leap year: 366 days
    )
    assert answer.status_code == 200 and len(answer.json["items"]) == history.MAX_DAYS == 366


@pytest.mark.spec("USE-8")
def test_events_as_csv_local_times_money_and_formula_safe_cells(setup):
    app, user, service, client = setup
    around_a_tokyo_day(service)
    used(
        service,
        at(2026, 3, 10, 5, 30),
        125,
        "voice",
        destination="international",
        counterparty="=HYPERLINK(\"http://x\")",
        covered=0,
        charged=250,
    )
    answer = client.get(
        f"/api/v1/services/{service.id}/usage/events.csv",
        params={"from": "2026-03-10", "to": "2026-03-10"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == csvexport.CONTENT_TYPE
    disposition = answer.headers["content-disposition"]
    assert "attachment" in disposition
    assert f"usage-{service.id}-2026-03-10-2026-03-10.csv" in disposition
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert tuple(rows[0]) == history.CSV_COLUMNS
    lines = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert [r["quantity"] for r in lines] == ["100", "125", "10"]  # newest first
    assert lines[0]["occurred_at"] == "2026-03-10T23:59:59+09:00"
    assert lines[2]["occurred_at"] == "2026-03-10T00:00:00+09:00"
    call = lines[1]
    assert call["counterparty"] == "'=HYPERLINK(\"http://x\")"  # a spreadsheet shows it as text
    assert (call["unit"], call["destination"], call["charged"], call["currency"]) == (
        "seconds",
        "international",
        "2.50",
        "GBP",
    )
    assert lines[0]["international"] == "false" and lines[0]["unit"] == "bytes"


@pytest.mark.spec("USE-8")
def test_the_csv_is_streamed_in_chunks(setup):
    app, user, service, client = setup
    start = at(2026, 3, 10)
    UsageEvent.insert_many(
        [
            {
                "event_id": f"bulk-{i}",
                "service": service.id,
                "type": "data",
                "quantity": i + 1,
                "occurred_at": start + timedelta(seconds=i),
                "covered": i + 1,
            }
            for i in range(1200)
        ]
    ).execute()
    chunks = history.csv_rows(service, date(2026, 3, 10), date(2026, 3, 11), ZoneInfo("UTC"))
    assert inspect.isgenerator(chunks)
    parts = list(chunks)
    assert len(parts) == 3  # 500 + 500 + 200 lines: never the whole file at once
    text = b"".join(parts).decode()
    assert text.count("\n") == 1201
    answer = client.get(
        f"/api/v1/services/{service.id}/usage/events.csv",
        params={"from": "2026-03-10", "to": "2026-03-11"},
    )
    assert answer.text.count("\n") == 1201


@pytest.mark.spec("USE-8", "LIM-2")
def test_another_customers_service_is_a_404_everywhere(setup):
    app, user, service, client = setup
    other = service_for(customer_user("Eve"))
    foreign = used(other, at(2026, 3, 10), 1)
    for path in (
        f"/api/v1/services/{other.id}/usage/events",
        f"/api/v1/services/{other.id}/usage/events.csv",
        f"/api/v1/services/{other.id}/usage/history",
        f"/services/{other.id}/usage",
        f"/services/{other.id}/usage.csv",
    ):
        answer = client.get(path, params={"from": "2026-03-10", "to": "2026-03-10"})
        assert answer.status_code == 404, path
        assert foreign.event_id not in answer.text


@pytest.mark.spec("USE-8", "SVC-1")
@pytest.mark.parametrize("status", ["expired", "cancelled"])
def test_an_ended_services_history_stays_readable(setup, status):
    app, user, service, client = setup
    event = used(service, utcnow() - timedelta(days=3), 4 * GB)
    service.status = status
    service.save()
    api = client.get(f"/api/v1/services/{service.id}/usage/events").json
    assert [e["id"] for e in api["items"]] == [event.event_id]
    page = client.get(f"/services/{service.id}/usage")
    assert page.status_code == 200 and "data-ended" in page.text
    assert f'data-event="{event.id}"' in page.text and "4 GB" in page.text
    sheet = client.get(f"/services/{service.id}/usage.csv")
    assert sheet.status_code == 200 and event.event_id in sheet.text


# -- the portal page -----------------------------------------------------------------------


@pytest.mark.spec("USE-8")
def test_usage_page_shows_a_range_chart_events_and_a_csv_link(setup):
    app, user, service, client = setup
    bucket(service, amount=10 * GB)
    ev = around_a_tokyo_day(service)
    page = client.get(
        f"/services/{service.id}/usage", params={"from": "2026-03-09", "to": "2026-03-11"}
    )
    assert page.status_code == 200, page.text[:500]
    html = page.text
    assert 'value="2026-03-09"' in html and 'value="2026-03-11"' in html
    assert html.count('<rect class="chart-bar"') == 3
    assert all(f'data-event="{e.id}"' in html for e in ev.values())
    assert html.index(f'data-event="{ev["after"].id}"') < html.index(
        f'data-event="{ev["before"].id}"'
    )  # newest first
    assert f'href="/services/{service.id}/usage.csv?from=2026-03-09&amp;to=2026-03-11"' in html
    assert "Asia/Tokyo" in html
    # The chart's tabs keep the range.
    assert "?chart=data&amp;from=2026-03-09&amp;to=2026-03-11" in html
    # The default: the current period, with the period's days charted.
    default = client.get(f"/services/{service.id}/usage").text
    assert default.count('<rect class="chart-bar"') == 11
    # Paged newest first within the range.
    paged = client.get(
        f"/services/{service.id}/usage",
        params={"from": "2026-03-09", "to": "2026-03-11", "limit": 2},
    ).text
    assert (
        f'data-event="{ev["after"].id}"' in paged and f'data-event="{ev["first"].id}"' not in paged
    )
    assert 'rel="next"' in paged and "from=2026-03-09" in paged.split('rel="next"')[1][:200]
    # The portal's CSV is the API's.
    sheet = client.get(
        f"/services/{service.id}/usage.csv", params={"from": "2026-03-10", "to": "2026-03-10"}
    )
    assert sheet.headers["content-type"] == csvexport.CONTENT_TYPE
    assert sheet.text.count("\n") == 3


@pytest.mark.spec("USE-8")
@pytest.mark.parametrize(
    "params, field, message",
    [
        (
            {"from": "2026-03-11", "to": "2026-03-10"},
            "from",
            "The start date is after the end date.",
        ),
        ({"from": "2024-01-01", "to": "2026-03-10"}, "to", "Choose a range of at most 366 days."),
        ({"from": "31/02/2026"}, "from", "Not a valid date."),
        ({"to": "0001-01-01"}, "to", "Choose a date between 1970 and 9998."),
    ],
)
def test_usage_page_rerenders_a_bad_range_with_the_field_error(setup, params, field, message):
    app, user, service, client = setup
    bucket(service)
    page = client.get(f"/services/{service.id}/usage", params=params)
    assert page.status_code == 422
    html = page.text
    assert f'id="range-{field}"' in html and f'aria-describedby="range-{field}-error"' in html
    assert message in html
    assert 'class="chart"' not in html and "data-csv" not in html  # nothing shown for it
    assert 'data-balance="data"' in html  # the balances still are
    # The CSV of a bad range goes back to the page, which says what is wrong.
    sheet = client.get(f"/services/{service.id}/usage.csv", params=params)
    assert sheet.status_code == 303 and sheet.headers["location"].startswith(
        f"/services/{service.id}/usage?"
    )


@pytest.mark.spec("USE-8", "OPS-7")
def test_usage_page_says_when_the_range_reaches_archived_events(make_app):
    app = make_app(plugins=[AUTH], retention={"usage_events_days": 100})
    user = customer_user()
    service = service_for(user)
    client = as_user(Client(app), user)
    old = (utcnow() - timedelta(days=200)).date()
    page = client.get(
        f"/services/{service.id}/usage", params={"from": old.isoformat(), "to": old.isoformat()}
    )
    assert page.status_code == 200 and "data-archived" in page.text
    recent = client.get(f"/services/{service.id}/usage").text
    assert "data-archived" not in recent


@pytest.mark.spec("USE-8")
def test_openapi_documents_the_history_operations(setup):
    app, *_ = setup
    doc = Client(app).get("/api/v1/openapi.json").json
    events = doc["paths"]["/services/{service_id}/usage/events"]["get"]
    names = {p["name"] for p in events["parameters"]}
    assert {"from", "to", "type", "cursor", "limit"} <= names
    assert events["tags"] == ["usage"]
    assert (
        "text/csv" in doc["paths"]["/services/{service_id}/usage/events.csv"]["get"]["description"]
    )
    assert "get" in doc["paths"]["/services/{service_id}/usage/history"]
