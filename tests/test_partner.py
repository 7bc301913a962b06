"""Partners (ENG-4): a plugin shipped as its own distribution, found through entry points.

The example distribution ``examples/acme-weather`` is pip-installed (editable)
by ``scripts/test``; the ``acme_weather`` fixture installs it when it is
missing. Its section, routes, template, task, table and command appear with
``plugins.entry_points`` on, and are gone when the operator disables it.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import site
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import jinja2
import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.demo import seed_demo
from engine.models import AuditEvent, OutboxMessage
from engine.plugins import BUILTIN_PLUGINS, ENTRY_POINT_GROUP, Plugins
from engine.settings import SettingsError, load_settings
from engine.testing import (
    TEST_ALLOWANCES,
    TEST_ENVIRON,
    Client,
    PrincipalHeader,
    as_user,
    problem,
    run_tasks,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "acme-weather"
SECRET = "test-secret-key-" + "x" * 32
ACME_HOOKS = [
    "dashboard_cards",
    "demo_data",
    "register_actors",
    "register_commands",
    "register_models",
    "register_routes",
    "register_sections",
    "register_settings",
]


@pytest.fixture(scope="session")
def acme_weather():
    """The example distribution, pip-installed (editable) unless scripts/test already did."""
    try:
        metadata.distribution("acme-weather")
    except metadata.PackageNotFoundError:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "-e", str(EXAMPLE)], check=True
        )
        importlib.invalidate_caches()
        site.addsitedir(sysconfig.get_paths()["purelib"])  # reads the new .pth: importable now
    return metadata.distribution("acme-weather")


@pytest.fixture
def clean_env(monkeypatch):
    """No PORTICO_* from the developer's shell leaks into a CLI run."""
    for key in [k for k in os.environ if k.startswith("PORTICO_")]:
        monkeypatch.delenv(key)


@pytest.fixture
def weather_app(make_app, acme_weather):
    app = make_app(entry_points=True, plugins=[("test-auth", PrincipalHeader())])
    app.demo = seed_demo(app)
    return app


def customer(app, name: str) -> Client:
    return as_user(Client(app), app.demo["users"][name])


# -- the distribution -----------------------------------------------------------------------


@pytest.mark.spec("ENG-4")
def test_example_is_an_installed_distribution_with_an_entry_point(acme_weather):
    (entry,) = [e for e in acme_weather.entry_points if e.group == ENTRY_POINT_GROUP]
    assert (entry.name, entry.value, acme_weather.version) == (
        "acme-weather",
        "acme_weather",
        "0.1.0",
    )
    module = entry.load()
    assert Path(module.__file__).parent == EXAMPLE / "acme_weather"  # this checkout's example


@pytest.mark.spec("ENG-4")
def test_example_wheel_ships_templates_static_translations_and_migrations(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(tmp_path),
            str(EXAMPLE),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("acme_weather-0.1.0-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "acme_weather/templates/acme_weather/weather.html",
        "acme_weather/templates/acme_weather/card.html",
        "acme_weather/static/weather.css",
        "acme_weather/locale/zh_Hans/LC_MESSAGES/messages.po",
        "acme_weather/migrations/0001_initial.py",
    } <= names
    entry_points = zipfile.ZipFile(wheel).read("acme_weather-0.1.0.dist-info/entry_points.txt")
    assert b"[portico.plugins]\nacme-weather = acme_weather" in entry_points


@pytest.mark.spec("ENG-2", "ENG-4")
def test_builtins_load_first_then_entry_points_then_test_plugins(tmp_path, acme_weather):
    settings = load_settings(
        None,
        environ={},
        overrides={
            "data_dir": str(tmp_path),
            "secret_key": SECRET,
            "base_url": "http://portal.test",
            **TEST_ALLOWANCES,
            "plugins": {"entry_points": True},
        },
    )
    plugins = Plugins(settings, extra=[("test-auth", PrincipalHeader())])
    builtins = [name for name, _ in BUILTIN_PLUGINS]
    assert sorted(plugins.enabled[: len(builtins)]) == sorted(builtins)
    assert plugins.enabled[len(builtins) :] == ["acme-weather", "test-auth"]
    info = plugins.info["acme-weather"]
    assert (info.source, info.version, info.folder) == (
        "acme-weather",
        "0.1.0",
        EXAMPLE / "acme_weather",
    )
    off = Plugins(
        load_settings(
            None,
            environ={},
            overrides={
                "data_dir": str(tmp_path),
                "secret_key": SECRET,
                "base_url": "http://portal.test",
                **TEST_ALLOWANCES,
                "plugins": {"entry_points": False},
            },
        )
    )
    assert "acme-weather" not in off.info


# -- portico plugins --json -----------------------------------------------------------------------


def portico(*args, tmp_path, **env):
    environ = {
        **TEST_ENVIRON,
        "PORTICO_SECRET_KEY": SECRET,
        "PORTICO_DATA_DIR": str(tmp_path / "data"),
        **env,
    }
    return CliRunner().invoke(cli, list(args), env=environ, catch_exceptions=False)


@pytest.mark.spec("ENG-4")
def test_portico_plugins_json_lists_the_partner_plugin(tmp_path, acme_weather, clean_env):
    result = portico("plugins", "--json", tmp_path=tmp_path)
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["acme-weather"] == {
        "name": "acme-weather",
        "version": "0.1.0",
        "source": "acme-weather",
        "enabled": True,
        "hooks": ACME_HOOKS,
    }
    assert list(rows).index("acme-weather") == len(BUILTIN_PLUGINS)  # after every built-in


@pytest.mark.spec("ENG-3", "ENG-4")
def test_portico_plugins_json_shows_it_disabled(tmp_path, acme_weather, clean_env):
    result = portico(
        "plugins", "--json", tmp_path=tmp_path, PORTICO_PLUGINS_DISABLED="acme-weather"
    )
    row = next(r for r in json.loads(result.output) if r["name"] == "acme-weather")
    assert row["enabled"] is False and row["hooks"] == [] and row["version"] == "0.1.0"


# -- it appears ... -------------------------------------------------------------------------------


@pytest.mark.spec("ENG-4", "ACC-3")
def test_partner_section_page_template_and_static_appear(weather_app):
    bob = customer(weather_app, "bob")
    sections = bob.get("/api/v1/sections").json["items"]
    assert {
        "id": "weather",
        "title": "Weather",
        "path": "/weather",
        "icon": "sun",
        "order": 70,
        "plugin": "acme-weather",
        "primary": False,  # on a phone: under More, not a tab of the bottom bar
    } in sections
    page = bob.get("/weather")
    assert page.status_code == 200
    assert "<h1>Weather at your sites</h1>" in page.text
    assert page.text.count('class="card weather-site"') == 2  # Shop and Warehouse
    assert 'data-section="weather"' in page.text and 'aria-current="page"' in page.text
    assert '/static/acme-weather/weather.css?v=' in page.text
    css = bob.get("/static/acme-weather/weather.css")
    assert css.status_code == 200 and ".weather-days" in css.text
    assert weather_app.theme.env.get_template("acme_weather/weather.html")


@pytest.mark.spec("ENG-4", "API-2")
def test_partner_json_api_and_openapi(weather_app):
    items = customer(weather_app, "bob").get("/api/v1/weather").json["items"]
    assert [s["label"] for s in items] == ["Shop", "Warehouse"]
    assert all(len(s["days"]) == 3 and s["days"][0]["unit"] == "C" for s in items)
    doc = Client(weather_app).get("/api/v1/openapi.json").json
    assert doc["paths"]["/weather"]["get"]["tags"] == ["acme-weather"]
    assert doc["paths"]["/weather/refresh"]["post"]["responses"]["202"]
    assert {"name": "acme-weather"} in doc["tags"]


@pytest.mark.spec("ENG-4", "DASH-1")
def test_partner_dashboard_card(weather_app):
    cards = customer(weather_app, "alice").get("/api/v1/dashboard").json["cards"]
    (card,) = [c for c in cards if c["plugin"] == "acme-weather"]
    assert card["id"] == "weather" and [s["label"] for s in card["data"]["sites"]] == ["Home"]


@pytest.mark.spec("ENG-4", "LIM-2")
def test_partner_api_scopes_to_the_tenant(weather_app):
    bobs_site = weather_app.demo["customers"]["bob"].sites[0]
    alice, bob = customer(weather_app, "alice"), customer(weather_app, "bob")
    assert bob.get(f"/api/v1/weather/sites/{bobs_site.id}").json["label"] == "Shop"
    assert problem(alice.get(f"/api/v1/weather/sites/{bobs_site.id}"))["status"] == 404
    assert problem(alice.get("/api/v1/weather/sites/nope"))["status"] == 404
    assert problem(Client(weather_app).get("/api/v1/weather"))["status"] == 401


@pytest.mark.spec("ENG-4")
def test_partner_task_runs_through_the_outbox_and_the_worker(weather_app):
    from acme_weather.models import Forecast

    assert {"acme_weather.tasks.refresh_forecasts", "acme_weather.tasks.refresh_all"} <= set(
        weather_app.tasks.actors
    )
    assert "periodic" in weather_app.tasks.actors["acme_weather.tasks.refresh_all"].options
    alice = customer(weather_app, "alice")
    Forecast.delete().execute()
    answer = alice.post("/api/v1/weather/refresh")
    assert answer.status_code == 202
    row = OutboxMessage.get(OutboxMessage.message_id == answer.json["queued"])
    assert row.actor == "acme_weather.tasks.refresh_forecasts"
    assert AuditEvent.get(AuditEvent.action == "acme-weather.refresh_requested").data == {
        "job": answer.json["queued"]
    }
    assert Forecast.select().count() == 0
    run_tasks(weather_app, answer.json["queued"])  # not the demo's invoice PDFs
    assert Forecast.select().count() == 3


@pytest.mark.spec("ENG-4")
def test_partner_form_is_csrf_protected(weather_app):
    alice = customer(weather_app, "alice")
    refused = alice.post("/weather/refresh", form={}, csrf=False)
    assert refused.status_code == 403
    assert (
        OutboxMessage.select()
        .where(OutboxMessage.actor == "acme_weather.tasks.refresh_forecasts")
        .count()
        == 0
    )
    done = alice.post("/weather/refresh", form={})
    assert done.status_code == 303 and done.headers["location"].endswith("/weather?queued=1")
    assert "Refreshing your forecast" in alice.get("/weather?queued=1").text


@pytest.mark.spec("ENG-4")
def test_partner_strings_are_translated(weather_app):
    page = customer(weather_app, "alice").get("/weather", headers={"Accept-Language": "zh-CN"})
    assert "<h1>您所在地点的天气</h1>" in page.text
    link = re.search(r'data-section="weather".*?</a>', page.text, re.S)
    assert link and "天气" in link[0]  # the section title in the navigation


@pytest.mark.spec("ENG-4")
def test_partner_settings_table(make_app, acme_weather):
    app = make_app(
        entry_points=True,
        plugins=[("test-auth", PrincipalHeader())],
        acme_weather={"units": "imperial", "days": 5},
    )
    app.demo = seed_demo(app)
    days = customer(app, "alice").get("/api/v1/weather").json["items"][0]["days"]
    assert len(days) == 5 and {d["unit"] for d in days} == {"F"}
    with pytest.raises(
        SettingsError,
        match=r"^acme_weather\.days: Must be greater than or equal "
        "to 1 and less than or equal to 7",
    ):
        make_app(entry_points=True, acme_weather={"days": 30})


def test_partner_settings_from_environment_and_redacted(tmp_path, acme_weather, clean_env):
    result = portico(
        "check",
        tmp_path=tmp_path,
        PORTICO_ACME_WEATHER_UNITS="imperial",
        PORTICO_ACME_WEATHER_API_KEY="wx-live-0123456789",
    )
    assert result.exit_code == 0, result.output
    config = json.loads(result.output.split("\n", 1)[1])
    assert config["acme_weather"] == {"units": "imperial", "days": 3, "api_key": "********"}
    assert "wx-live-0123456789" not in result.output


def test_hook_register_commands(weather_app, clean_env, tmp_path):
    """``portico weather refresh`` comes from the partner plugin (through the real CLI)."""
    from acme_weather.models import Forecast

    Forecast.delete().execute()
    settings = weather_app.settings
    env = {"PORTICO_DATABASE_URL": settings.database_url, "PORTICO_BROKER_URL": settings.broker_url}
    listed = portico("--help", tmp_path=tmp_path, **env)
    assert "weather" in listed.output
    result = portico("weather", "refresh", "--customer", "C-100002", tmp_path=tmp_path, **env)
    assert result.exit_code == 0, result.output
    assert result.output == "6 forecasts stored for 1 customers\n"  # two sites, three days
    assert Forecast.select().count() == 6
    missing = portico("weather", "refresh", "--customer", "C-999", tmp_path=tmp_path, **env)
    assert missing.exit_code == 1 and "no customer numbered C-999" in missing.output
    gone = portico(
        "weather", "refresh", tmp_path=tmp_path, PORTICO_PLUGINS_DISABLED="acme-weather", **env
    )
    assert gone.exit_code == 2 and "No such command 'weather'" in gone.output


# -- ... and disappears when disabled ------------------------------------------------------------------


@pytest.mark.spec("ENG-3", "ENG-4", "ACC-3")
def test_disabled_partner_plugin_is_gone(make_app, acme_weather):
    app = make_app(
        entry_points=True, disabled=["acme-weather"], plugins=[("test-auth", PrincipalHeader())]
    )
    app.demo = seed_demo(app)
    bob = customer(app, "bob")
    assert "weather" not in [s["id"] for s in bob.get("/api/v1/sections").json["items"]]
    for path in (
        "/weather",
        "/api/v1/weather",
        "/api/v1/weather/sites/1",
        "/static/acme-weather/weather.css",
    ):
        assert bob.get(path).status_code == 404, path
    assert bob.post("/api/v1/weather/refresh").status_code == 404
    assert 'data-section="weather"' not in bob.get("/", headers={"Accept": "text/html"}).text
    assert not [
        c for c in bob.get("/api/v1/dashboard").json["cards"] if c["plugin"] == "acme-weather"
    ]
    assert not [a for a in app.tasks.actors if a.startswith("acme_weather.")]
    with pytest.raises(jinja2.TemplateNotFound):
        app.theme.env.get_template("acme_weather/weather.html")
    assert not app.database.table_exists("acme_weather_forecast")
    assert "acme-weather" not in json.dumps(Client(app).get("/api/v1/openapi.json").json)


# -- the partner's own test suite, on engine.testing ------------------------------------------------------


@pytest.mark.spec("ENG-4")
def test_partner_runs_its_own_tests_with_the_engine_fixtures(acme_weather):
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", str(EXAMPLE / "tests")],
        capture_output=True,
        text=True,
        cwd=EXAMPLE,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
