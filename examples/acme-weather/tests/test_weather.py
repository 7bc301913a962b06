"""acme-weather's own tests, on Portico's fixtures (``engine.testing`` is a pytest plugin).

Run with ``pytest examples/acme-weather/tests``: each test that uses ``make_app``
runs on SQLite and on PostgreSQL (skipped without a server, except in CI).
"""

from __future__ import annotations

import pytest

from engine.demo import seed_demo
from engine.testing import Client, PrincipalHeader, as_user, problem, run_tasks

from acme_weather.models import Forecast


@pytest.fixture
def weather_app(make_app):
    """The portal with the installed partner plugins, demo data, and test authentication."""
    app = make_app(entry_points=True, plugins=[("test-auth", PrincipalHeader())])
    app.demo = seed_demo(app)
    return app


def customer(app, name):
    return as_user(Client(app), app.demo["users"][name])


def test_page_shows_a_forecast_per_site(weather_app):
    page = customer(weather_app, "bob").get("/weather")
    assert page.status_code == 200
    assert page.text.count('class="card weather-site"') == 2  # Shop and Warehouse
    assert "Refresh forecast" in page.text


def test_refresh_is_queued_then_runs_in_the_worker(weather_app):
    alice = customer(weather_app, "alice")
    Forecast.delete().execute()
    answer = alice.post("/api/v1/weather/refresh")
    assert answer.status_code == 202 and answer.json["queued"]
    assert Forecast.select().count() == 0  # the request only queued the work
    run_tasks(weather_app, answer.json["queued"])  # just this job, not the demo's other work
    assert Forecast.select().count() == 3  # one site, three days
    assert [len(s["days"]) for s in alice.get("/api/v1/weather").json["items"]] == [3]


def test_another_customers_site_is_not_found(weather_app):
    bobs_site = weather_app.demo["customers"]["bob"].sites[0]
    answer = customer(weather_app, "alice").get(f"/api/v1/weather/sites/{bobs_site.id}")
    assert problem(answer)["status"] == 404


def test_imperial_units(make_app):
    app = make_app(
        entry_points=True,
        plugins=[("test-auth", PrincipalHeader())],
        acme_weather={"units": "imperial"},
    )
    app.demo = seed_demo(app)
    days = customer(app, "alice").get("/api/v1/weather").json["items"][0]["days"]
    assert {d["unit"] for d in days} == {"F"}
