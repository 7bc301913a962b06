"""The plugin manager (ENG-2, ENG-3): load order, enabling and disabling, start-up errors.

Start-up errors are ``PluginError``s whose message names the plugins involved
and the fix; ``portico`` prints them instead of a traceback.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import textwrap
import uuid
from pathlib import Path

import jinja2
import pytest
from click.testing import CliRunner

from engine import hookimpl
from engine.app import create_app
from engine.cli import cli
from engine.db import BaseModel
from engine.plugins import BUILTIN_PLUGINS, ESSENTIAL_PLUGINS, PluginError, Plugins, load_plugins
from engine.registry import Route, Section
from engine.settings import load_settings
from engine.tasks import task
from engine.testing import TEST_ALLOWANCES, TEST_ENVIRON, Client, PrincipalHeader, as_user

from tests.test_hooks import customer_user

BUILTINS = [name for name, _ in BUILTIN_PLUGINS]
SECRET = "test-secret-key-" + "x" * 32


def settings_for(tmp_path, *, environ=None, path=None, **overrides):
    """Settings as an operator would write them (TOML file, environment), partner plugins off."""
    values = {
        "data_dir": str(tmp_path / "data"),
        "secret_key": SECRET,
        "base_url": "http://portal.test",
        **TEST_ALLOWANCES,
        "plugins": {"entry_points": False},
        **overrides,
    }
    return load_settings(path, environ=environ or {}, overrides=values)


def toml(tmp_path, text: str) -> Path:
    path = tmp_path / "portico.toml"
    path.write_text(textwrap.dedent(text))
    return path


def optional_builtin() -> str:
    """A built-in plugin that can be disabled: not essential, needed by no other built-in."""
    plugins = Plugins(
        load_settings(
            None,
            environ={},
            overrides={
                "secret_key": SECRET,
                "base_url": "http://portal.test",
                **TEST_ALLOWANCES,
                "plugins": {"entry_points": False},
            },
        )
    )
    needed = {n for _, n in plugins.collect("plugin_requires")}
    return next(n for n in reversed(BUILTINS) if n not in ESSENTIAL_PLUGINS | needed)


class Gadgets:
    """A feature plugin for one test."""


class Widgets:
    """Another one."""


EXTRAS = [("gadgets", Gadgets()), ("widgets", Widgets())]


# -- load order -------------------------------------------------------------------------


@pytest.mark.spec("ENG-2")
def test_builtins_load_first_then_plugins_added_for_a_test(tmp_path):
    plugins = Plugins(settings_for(tmp_path), extra=EXTRAS)
    assert plugins.enabled[0] == "core"
    assert sorted(plugins.enabled[: len(BUILTINS)]) == sorted(BUILTINS)
    assert plugins.enabled[len(BUILTINS) :] == ["gadgets", "widgets"]
    assert {plugins.info[n].source for n in BUILTINS} == {"builtin"}


def test_two_plugins_with_one_name_are_refused(tmp_path):
    with pytest.raises(
        PluginError, match="two plugins are named 'gadgets'.*rename the entry point"
    ):
        Plugins(settings_for(tmp_path), extra=[("gadgets", Gadgets()), ("gadgets", Widgets())])


# -- disabling -------------------------------------------------------------------------------


@pytest.mark.spec("ENG-3")
def test_disable_in_portico_toml(tmp_path):
    path = toml(
        tmp_path,
        """
        [plugins]
        disabled = ["gadgets"]
        """,
    )
    plugins = Plugins(settings_for(tmp_path, path=path), extra=EXTRAS)
    assert "gadgets" not in plugins.enabled and "widgets" in plugins.enabled
    assert plugins.info["gadgets"].enabled is False and plugins.info["gadgets"].module is None


@pytest.mark.spec("ENG-3")
def test_disable_with_environment_variable(tmp_path):
    environ = {"PORTICO_PLUGINS_DISABLED": "gadgets, widgets"}
    plugins = Plugins(settings_for(tmp_path, environ=environ), extra=EXTRAS)
    assert plugins.enabled == [n for n in plugins.enabled if n in BUILTINS]
    assert not plugins.info["gadgets"].enabled and not plugins.info["widgets"].enabled


@pytest.mark.spec("ENG-3")
def test_environment_variable_wins_over_the_file(tmp_path):
    path = toml(
        tmp_path,
        """
        [plugins]
        disabled = ["gadgets"]
        """,
    )
    plugins = Plugins(
        settings_for(tmp_path, path=path, environ={"PORTICO_PLUGINS_DISABLED": "widgets"}),
        extra=EXTRAS,
    )
    assert "gadgets" in plugins.enabled and "widgets" not in plugins.enabled


@pytest.mark.spec("ENG-3")
def test_disabling_a_builtin_removes_its_routes(tmp_path):
    name = optional_builtin()
    everything = create_app(settings_for(tmp_path))
    paths = [r.path for p, r in everything.routes if p == name and "{" not in r.path]
    everything.database.close_all()
    assert paths, f"built-in '{name}' registers no plain route to check"
    app = create_app(settings_for(tmp_path, plugins={"disabled": [name], "entry_points": False}))
    assert name not in app.plugins.enabled
    assert all(p != name for p, _ in app.routes)
    for path in paths:
        assert Client(app).get(path, headers={"Accept": "application/json"}).status_code == 404
    app.database.close_all()


def test_essential_plugin_cannot_be_disabled(tmp_path):
    with pytest.raises(PluginError) as error:
        Plugins(settings_for(tmp_path, plugins={"disabled": ["core"]}))
    assert str(error.value) == (
        "plugin 'core' is essential and cannot be disabled; remove it from [plugins] disabled"
    )


def test_unknown_name_in_disabled_is_an_error(tmp_path):
    with pytest.raises(PluginError) as error:
        Plugins(
            settings_for(tmp_path, environ={"PORTICO_PLUGINS_DISABLED": "gadget"}), extra=EXTRAS
        )
    message = str(error.value)
    assert message.startswith(
        "[plugins] disabled names unknown plugin 'gadget' "
        "(did you mean 'gadgets'?); installed plugins: "
    )
    assert "core" in message and "widgets" in message


# -- plugins that need plugins -----------------------------------------------------------------


class NeedsGadgets:
    @hookimpl
    def plugin_requires(self):
        return ["gadgets"]


def test_disabling_a_needed_plugin_names_both_and_the_fix(tmp_path):
    with pytest.raises(PluginError) as error:
        Plugins(
            settings_for(tmp_path, environ={"PORTICO_PLUGINS_DISABLED": "gadgets"}),
            extra=[("gadgets", Gadgets()), ("acme", NeedsGadgets())],
        )
    assert str(error.value) == (
        "plugin 'acme' needs plugin 'gadgets', which is disabled; enable 'gadgets' "
        "or also disable 'acme' in [plugins] disabled"
    )


def test_disabling_both_is_fine(tmp_path):
    plugins = Plugins(
        settings_for(tmp_path, environ={"PORTICO_PLUGINS_DISABLED": "gadgets,acme"}),
        extra=[("gadgets", Gadgets()), ("acme", NeedsGadgets())],
    )
    assert "acme" not in plugins.enabled


def test_needing_a_plugin_that_is_not_installed(tmp_path):
    with pytest.raises(
        PluginError, match="plugin 'acme' needs plugin 'gadgets', which is not installed"
    ):
        Plugins(settings_for(tmp_path), extra=[("acme", NeedsGadgets())])


def test_plugins_needing_each_other_in_a_cycle(tmp_path):
    class NeedsAcme:
        @hookimpl
        def plugin_requires(self):
            return ["acme"]

    with pytest.raises(PluginError, match=r"cycle \(acme -> gadgets -> acme\)"):
        Plugins(settings_for(tmp_path), extra=[("acme", NeedsGadgets()), ("gadgets", NeedsAcme())])


# -- collisions ------------------------------------------------------------------------------------


class Page:
    auth = "public"

    def on_get(self, req, resp):
        resp.media = {"plugin": self.plugin}


class Provider:
    def __init__(self, id):
        self.id = id


class Thing(BaseModel):
    class Meta:
        table_name = "acme_thing"


class OtherThing(BaseModel):
    class Meta:
        table_name = "acme_thing"


@task
def sync(app):
    pass


def other_sync(app):
    pass


other_sync = task(other_sync)
other_sync.__name__ = "sync"


def collide(hook: str, first, second):
    """Two plugin objects implementing ``hook``, returning ``first`` and ``second``."""

    def plugin(value):
        class P:
            pass

        if hook in ("register_models", "register_actors"):
            setattr(P, hook, hookimpl(lambda self: value))
        else:
            setattr(P, hook, hookimpl(lambda self, app: value))
        return P()

    return [("billing-x", plugin(first)), ("acme-pay", plugin(second))]


COLLISIONS = {
    "route": (
        "register_routes",
        [Route("/api/v1/pay", Page())],
        [Route("/api/v1/pay", Page())],
        "route '/api/v1/pay'",
    ),
    "route-suffix": (
        "register_routes",
        [Route("/pay", Page(), "go")],
        [Route("/pay", Page(), "go")],
        "route '/pay' (suffix 'go')",
    ),
    "provider": (
        "payment_providers",
        [Provider("card")],
        [Provider("card")],
        "payment provider 'card'",
    ),
    "channel": (
        "notification_channels",
        [Provider("sms")],
        [Provider("sms")],
        "notification channel 'sms'",
    ),
    "section": (
        "register_sections",
        [Section("bills", "Billing", "/bills")],
        [Section("bills", "Pay", "/pay")],
        "section 'bills'",
    ),
    "table": ("register_models", [Thing], [OtherThing], "table 'acme_thing'"),
}


@pytest.mark.spec("ENG-2")
@pytest.mark.parametrize("kind", sorted(COLLISIONS))
def test_collision_is_a_startup_error_naming_both_plugins(tmp_path, kind):
    hook, first, second, what = COLLISIONS[kind]
    with pytest.raises(PluginError) as error:
        create_app(settings_for(tmp_path), extra_plugins=collide(hook, first, second))
    assert str(error.value) == (
        f"plugin 'acme-pay' registers {what} already registered by plugin 'billing-x'; "
        "rename one of them, or disable one plugin in [plugins] disabled"
    )


def test_actor_names_come_from_the_function_not_the_plugin(tmp_path):
    # Actors are named <module>.<function>: the name a plugin is installed under plays no
    # part, so two plugins returning one function collide, naming both ...
    with pytest.raises(
        PluginError,
        match="plugin 'acme-pay' registers actor 'test_plugins.sync' "
        "already registered by plugin 'billing-x'",
    ):
        create_app(settings_for(tmp_path), extra_plugins=collide("register_actors", [sync], [sync]))

    # ... and so do two functions of one name in one module.
    class Twice:
        @hookimpl
        def register_actors(self):
            return [sync, other_sync]

    with pytest.raises(
        PluginError,
        match="plugin 'acme' registers actor 'test_plugins.sync' "
        "already registered by plugin 'acme'",
    ):
        create_app(settings_for(tmp_path), extra_plugins=[("acme", Twice())])


def test_actor_without_task_decorator_is_refused(tmp_path):
    def plain(app):
        pass

    class Actors:
        @hookimpl
        def register_actors(self):
            return [plain]

    with pytest.raises(
        PluginError, match="plugin 'acme' registers actor 'test_plugins.plain' without @task"
    ):
        create_app(settings_for(tmp_path), extra_plugins=[("acme", Actors())])


# -- hookimpls that would never run --------------------------------------------------------------


def test_misspelled_hookimpl_names_the_plugin_and_the_hook(tmp_path):
    class Typo:
        @hookimpl
        def register_route(self, app):
            return []

    with pytest.raises(PluginError) as error:
        Plugins(settings_for(tmp_path), extra=[("acme", Typo())])
    assert str(error.value) == (
        "plugin 'acme' implements unknown hook 'register_route' "
        "(did you mean 'register_routes'?); hook names are listed in "
        "engine/hookspecs.py and in each plugin's hookspecs.py (a hook "
        "of a plugin that may be disabled: mark the implementation "
        "@hookimpl(optionalhook=True))"
    )


def test_hook_function_without_the_marker_is_an_error(tmp_path):
    class Unmarked:
        def register_sections(self, app):
            return [Section("gadgets", "Gadgets", "/gadgets")]

    with pytest.raises(
        PluginError,
        match="plugin 'acme' defines register_sections\\(\\) without "
        "@hookimpl, so it would never be called",
    ):
        Plugins(settings_for(tmp_path), extra=[("acme", Unmarked())])


def test_hookimpl_asking_for_an_argument_the_hook_does_not_pass(tmp_path):
    class Greedy:
        @hookimpl
        def register_routes(self, app, request):
            return []

    with pytest.raises(PluginError) as error:
        Plugins(settings_for(tmp_path), extra=[("acme", Greedy())])
    assert str(error.value).startswith(
        "plugin 'acme': register_routes(app, request) declares argument(s) {'request'} that the "
        "hook does not pass"
    )


def test_plugin_that_fails_to_import_is_named(tmp_path, monkeypatch):
    from engine import plugins as plugins_module

    def broken():
        raise ModuleNotFoundError("No module named 'requests'")

    monkeypatch.setattr(
        plugins_module.Plugins,
        "_entry_points",
        staticmethod(lambda: iter([("acme-weather", broken, "acme-weather", "0.1")])),
    )
    with pytest.raises(PluginError) as error:
        Plugins(settings_for(tmp_path, plugins={"entry_points": True}))
    assert str(error.value) == (
        "plugin 'acme-weather' (distribution 'acme-weather') failed to load: ModuleNotFoundError: "
        "No module named 'requests'. Fix or uninstall it, or add 'acme-weather' to "
        "[plugins] disabled"
    )


# -- a disabled plugin is gone, not hidden ----------------------------------------------------------

GADGETS_INIT = '''
from engine import hookimpl
from engine.registry import Alert, Route, Section
from engine.tasks import task


class Page:
    auth = "public"

    def on_get(self, req, resp):
        req.context.app.page(req, resp, "{pkg}/page.html")


@task
def polish(app):
    pass


@hookimpl
def register_routes(app):
    return [Route("/gadgets", Page()), Route("/api/v1/gadgets", Page())]


@hookimpl
def register_sections(app):
    return [Section("gadgets", "Gadgets", "/gadgets")]


@hookimpl
def portal_alerts(app, ctx):
    return [Alert("gadget-due", "info", "A gadget is due")]


@hookimpl
def register_actors():
    return [polish]


CALLS = []


@hookimpl
def authenticate_request(app, req):
    CALLS.append(req.path)  # proves whether this plugin's code ran
'''


@pytest.fixture
def gadgets_package(tmp_path, monkeypatch):
    """A plugin package on disk with templates/, static/ and migrations/, under a fresh name."""
    pkg_name = f"gadgets_{uuid.uuid4().hex[:8]}"
    pkg = tmp_path / "site" / pkg_name
    (pkg / "templates" / pkg_name).mkdir(parents=True)
    (pkg / "static").mkdir()
    (pkg / "migrations").mkdir()
    (pkg / "__init__.py").write_text(GADGETS_INIT.replace("{pkg}", pkg_name))
    (pkg / "templates" / pkg_name / "page.html").write_text(
        '{% extends "base.html" %}{% block content %}<p id="gadgets">gadget page</p>{% endblock %}'
    )
    (pkg / "static" / "gadgets.css").write_text("p { color: teal }")
    (pkg / "migrations" / "0001_initial.py").write_text(
        "def up(migrator, db):\n    db.execute_sql('CREATE TABLE gadgets_item (id INTEGER PRIMARY KEY)')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield pkg_name
    sys.modules.pop(pkg_name, None)


def gadgets_plugin(pkg_name):
    return ("gadgets", importlib.import_module(pkg_name))


@pytest.mark.spec("ACC-3", "ENG-3")
def test_enabled_plugin_brings_routes_sections_alerts_actors_templates(make_app, gadgets_package):
    app = make_app(plugins=[("test-auth", PrincipalHeader()), gadgets_plugin(gadgets_package)])
    client = Client(app)
    page = client.get("/gadgets")
    assert page.status_code == 200 and '<p id="gadgets">gadget page</p>' in page.text
    assert "gadgets" in [s["id"] for s in client.get("/api/v1/sections").json["items"]]
    assert "gadgets" in [s["id"] for s in client.get("/api/v1/sections").json["items"]]
    alerts = as_user(client, customer_user()).get("/api/v1/alerts").json["items"]
    assert [a["id"] for a in alerts] == ["gadget-due"]
    assert f"{gadgets_package}.polish" in app.tasks.actors  # named after its module
    assert client.get("/static/gadgets/gadgets.css").status_code == 200
    assert app.database.table_exists("gadgets_item")
    assert "/gadgets" in sys.modules[gadgets_package].CALLS


@pytest.mark.spec("ACC-3", "ENG-3")
def test_disabled_plugin_is_absent_not_hidden(make_app, gadgets_package):
    app = make_app(
        plugins=[("test-auth", PrincipalHeader()), gadgets_plugin(gadgets_package)],
        disabled=["gadgets"],
    )
    client = Client(app)
    assert client.get("/gadgets").status_code == 404
    assert client.get("/api/v1/gadgets").status_code == 404
    assert "gadgets" not in [s["id"] for s in client.get("/api/v1/sections").json["items"]]
    assert (
        'data-section="gadgets"' not in client.get("/gadgets", headers={"Accept": "text/html"}).text
    )
    alerts = as_user(client, customer_user()).get("/api/v1/alerts")
    assert alerts.status_code == 200 and alerts.json["items"] == []
    assert f"{gadgets_package}.polish" not in app.tasks.actors
    with pytest.raises(LookupError, match=f"no actor named '{gadgets_package}.polish'"):
        app.tasks.enqueue(f"{gadgets_package}.polish")
    with pytest.raises(jinja2.TemplateNotFound):
        app.theme.env.get_template(f"{gadgets_package}/page.html")
    assert client.get("/static/gadgets/gadgets.css").status_code == 404
    assert not app.database.table_exists("gadgets_item")  # its migrations do not run
    assert "gadgets" not in json.dumps(client.get("/api/v1/openapi.json").json["tags"])
    assert sys.modules[gadgets_package].CALLS == []  # none of its hooks ran


def test_disabled_entry_point_plugin_is_never_imported(tmp_path, monkeypatch, gadgets_package):
    """Blocked before import: a disabled partner package's code (even a broken one) never runs."""
    from engine import plugins as plugins_module

    def entry_points():
        yield "gadgets", lambda: importlib.import_module(gadgets_package), "gadgets-dist", "1.2.3"

    monkeypatch.setattr(plugins_module.Plugins, "_entry_points", staticmethod(entry_points))
    settings = settings_for(tmp_path, plugins={"entry_points": True, "disabled": ["gadgets"]})
    found = Plugins(settings)
    assert found.info["gadgets"].enabled is False and found.info["gadgets"].version == "1.2.3"
    assert gadgets_package not in sys.modules


# -- a plugin's own settings table ------------------------------------------------------------------


class WithSettings:
    @hookimpl
    def register_settings(self):
        from marshmallow import Schema, fields, validate

        from engine.settings import secret

        class GadgetSettings(Schema):
            colour = fields.String(load_default="teal", validate=validate.OneOf(["teal", "plum"]))
            per_page = fields.Integer(load_default=20, validate=validate.Range(1, 100))
            token = secret(fields.String(load_default=""))

        return GadgetSettings


def plugin_settings(tmp_path, name="gadgets", **tables):
    settings = settings_for(tmp_path, **tables)
    load_plugins(settings, extra=[(name, WithSettings())])
    return settings


def test_plugin_settings_table_is_validated_and_read(tmp_path):
    settings = plugin_settings(tmp_path, gadgets={"colour": "plum", "token": "s3cret"})
    assert settings.plugin("gadgets") == {"colour": "plum", "per_page": 20, "token": "s3cret"}
    assert settings.redacted()["gadgets"]["token"] == "********"


@pytest.mark.parametrize(
    "table, message",
    [
        ({"colour": "red"}, "gadgets.colour: Must be one of: teal, plum."),
        ({"per_page": "many"}, "gadgets.per_page: Not a valid integer."),
        (
            {"per_page": 500},
            "gadgets.per_page: Must be greater than or equal to 1 and less than or equal to 100.",
        ),
        ({"color": "teal"}, "gadgets.color: unknown setting"),
    ],
)
def test_plugin_settings_errors_name_the_key(tmp_path, table, message):
    from engine.settings import SettingsError

    with pytest.raises(SettingsError) as error:
        plugin_settings(tmp_path, gadgets=table)
    assert str(error.value).startswith(message)


def test_hyphenated_plugin_reads_an_underscored_table(tmp_path):
    from engine.settings import SettingsError

    settings = plugin_settings(tmp_path, "acme-gadgets", acme_gadgets={"colour": "plum"})
    assert settings.plugin("acme-gadgets")["colour"] == "plum"
    with pytest.raises(SettingsError, match=r"^acme_gadgets\.colour: Must be one of"):
        plugin_settings(tmp_path, "acme-gadgets", acme_gadgets={"colour": "red"})


def test_plugin_table_from_the_environment(tmp_path):
    settings = load_settings(
        None,
        environ={"PORTICO_GADGETS_PER_PAGE": "50"},
        overrides={
            "data_dir": str(tmp_path),
            "secret_key": SECRET,
            "base_url": "http://portal.test",
            **TEST_ALLOWANCES,
            "plugins": {"entry_points": False},
        },
        plugin_names={"core", "gadgets"},
    )
    load_plugins(settings, extra=[("gadgets", WithSettings())])
    assert settings.plugin("gadgets")["per_page"] == 50


def test_table_nobody_owns_is_an_error(tmp_path):
    from engine.settings import SettingsError

    with pytest.raises(
        SettingsError,
        match=r"unknown settings table \[gadets\]: no installed plugin "
        "is named 'gadets'",
    ):
        plugin_settings(tmp_path, gadets={"colour": "plum"})


def test_disabled_plugin_keeps_its_table_unvalidated(tmp_path):
    settings = settings_for(
        tmp_path,
        gadgets={"colour": "not checked while disabled"},
        plugins={"disabled": ["gadgets"], "entry_points": False},
    )
    load_plugins(settings, extra=[("gadgets", WithSettings())])
    assert settings.plugin("gadgets") == {}


# -- portico plugins -------------------------------------------------------------------------------


def run_cli(*args, env=None, tmp_path):
    environ = {
        **TEST_ENVIRON,
        "PORTICO_SECRET_KEY": SECRET,
        "PORTICO_DATA_DIR": str(tmp_path / "data"),
        "PORTICO_PLUGINS_ENTRY_POINTS": "false",
        **(env or {}),
    }
    return CliRunner().invoke(cli, list(args), env=environ, catch_exceptions=False)


@pytest.mark.spec("ENG-3")
def test_portico_plugins_lists_builtins_with_enabled_and_hooks(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("PORTICO_")]:
        monkeypatch.delenv(key)
    name = optional_builtin()
    result = run_cli("plugins", "--json", env={"PORTICO_PLUGINS_DISABLED": name}, tmp_path=tmp_path)
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert list(rows)[0] == "core" and set(BUILTINS) == set(rows)
    assert rows["core"]["enabled"] is True and rows["core"]["source"] == "builtin"
    assert {"register_models", "register_routes"} <= set(rows["core"]["hooks"])
    assert rows[name]["enabled"] is False and rows[name]["hooks"] == []
    table = run_cli("plugins", env={"PORTICO_PLUGINS_DISABLED": name}, tmp_path=tmp_path)
    assert any(
        line.split()[:3] == [name, rows[name]["version"], "no"]
        for line in table.output.splitlines()
    )


def test_portico_plugins_reports_a_bad_plugin_set_without_a_traceback(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("PORTICO_")]:
        monkeypatch.delenv(key)
    result = run_cli("plugins", env={"PORTICO_PLUGINS_DISABLED": "core"}, tmp_path=tmp_path)
    assert result.exit_code == 1
    assert "Error: plugin 'core' is essential and cannot be disabled" in result.output
    assert "Traceback" not in result.output


STRIPE_KEYS = {"secret_key": "sk_test_unused", "publishable_key": "pk_test_unused"}


def _with_dependents(name: str) -> list[str]:
    """``name`` and every built-in that needs it, directly or through another."""
    plugins = Plugins(settings_for(Path("/nonexistent")))
    needs = {n: set() for n, _ in BUILTIN_PLUGINS}
    for owner, required in plugins.collect("plugin_requires"):
        needs[owner].add(required)
    off = {name}
    while grown := {n for n, wants in needs.items() if wants & off} - off:
        off |= grown
    return sorted(off)


@pytest.mark.spec("ENG-3")
@pytest.mark.parametrize("name", [n for n, _ in BUILTIN_PLUGINS if n not in ESSENTIAL_PLUGINS])
def test_every_builtin_can_be_disabled_with_what_needs_it(tmp_path, name):
    """An operator can switch any feature off: no other plugin's hook or page needs it."""
    off = _with_dependents(name)
    # Without the sandbox, billing takes the real provider (keys only: nothing is called here).
    real = {"billing": {"provider": "stripe"}, "stripe": STRIPE_KEYS} if "sandbox" in off else {}
    settings = settings_for(tmp_path, plugins={"disabled": off, "entry_points": False}, **real)
    app = create_app(settings)
    try:
        assert not set(off) & set(app.plugins.enabled)
        client = Client(app)
        assert client.get("/").status_code < 500  # the welcome page is the dashboard's
        assert client.get("/api/v1/openapi.json").status_code == 200
        assert client.get("/livez").status_code == 200
    finally:
        app.database.close_all()
