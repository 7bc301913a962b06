"""Every hook is documented and tested (ENG-1), and each engine hook does what its spec says.

The meta-tests read ``engine/hookspecs.py`` and the built-in plugins' ``hookspecs.py``:
each spec needs a docstring, its exact signature in exactly one heading of
``docs/plugins.md``, and a test named ``test_hook_<name>`` somewhere under ``tests/``.
A new hook without those fails here, by name.

The ``test_hook_<name>`` tests register a small plugin object for one test
with ``make_app(plugins=[("acme", obj)])`` and assert the effect.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import re
from pathlib import Path

import peewee
import pytest
from marshmallow import Schema, fields, validate

from engine import hookimpl, hookspecs
from engine.audit import record_system
from engine.context import Context, Principal
from engine.db import BaseModel
from engine.models import Contact, Customer, Product, Service, Site, User
from engine.notify import Notice, notify
from engine.plugins import PluginError, Plugins
from engine.registry import Action, Alert, Balance, Card, Credit, Route, Section
from engine.settings import SettingsError, load_settings
from engine.tasks import task
from engine.testing import TEST_SETTINGS, Client, PrincipalHeader, as_user, problem, run_tasks

ROOT = Path(__file__).resolve().parent.parent
HOOKSPECS = [ROOT / "engine" / "hookspecs.py", *sorted((ROOT / "plugins").glob("*/hookspecs.py"))]
PLUGIN_GUIDE = ROOT / "docs" / "plugins.md"


# -- the meta-tests ---------------------------------------------------------------


def spec_signatures() -> dict[str, str]:
    """``{hook name: "name(args) -> return"}`` exactly as written in the hookspecs files."""
    out = {}
    for path in HOOKSPECS:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and any(
                "hookspec" in ast.unparse(d) for d in node.decorator_list
            ):
                assert node.name not in out, f"hook {node.name} is specified twice"
                returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
                out[node.name] = f"{node.name}({ast.unparse(node.args)}){returns}"
    return out


def spec_function(hook: str):
    for path in HOOKSPECS:
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        if hasattr(getattr(module, hook, None), "portico_spec"):
            return getattr(module, hook)
    raise LookupError(hook)


def hook_test_names() -> set[str]:
    """The hook each ``test_hook_<name>[_more]`` under tests/ is about (longest name wins)."""
    hooks = sorted(spec_signatures(), key=len, reverse=True)
    found = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith(
                "test_hook_"
            ):
                rest = node.name[len("test_hook_") :]
                hook = next((h for h in hooks if rest == h or rest.startswith(h + "_")), None)
                if hook:
                    found.add(hook)
    return found


SIGNATURES = spec_signatures()


def settings_for(tmp_path, disabled=()):
    return load_settings(
        None,
        environ={},
        overrides={
            "data_dir": str(tmp_path),
            "secret_key": "k" * 32,
            **TEST_SETTINGS,
            "plugins": {"entry_points": False, "disabled": list(disabled)},
        },
    )


def test_every_hookspec_is_found_by_the_meta_tests(tmp_path):
    runtime = set(Plugins(settings_for(tmp_path)).hook_names())
    assert set(SIGNATURES) == runtime
    assert len(runtime) >= 21


def test_plugin_hooks_are_specified_by_their_plugin_not_the_engine(tmp_path):
    plugins = Plugins(settings_for(tmp_path))
    owners = plugins.spec_owners
    assert owners["payment_succeeded"] == "billing" and owners["provision_addon"] == "addons"
    assert owners["service_renewed"] == "services" and owners["credit_balance"] == "usage"
    assert owners["authenticate_request"] == owners["register_routes"] == "engine"
    engine_specs = {n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "portico_spec")}
    assert engine_specs == {n for n, o in owners.items() if o == "engine"}


def test_a_disabled_plugin_takes_its_hooks_with_it(tmp_path):
    plugins = Plugins(settings_for(tmp_path, disabled=["addons"]))
    assert "provision_addon" not in plugins.hook_names()
    assert "payment_succeeded" in plugins.hook_names()


class WeatherSpecs:
    @hookspecs.hookspec
    def forecast_made(self, app, city):
        """A partner plugin's own event."""


def test_hook_register_hookspecs_adds_a_partner_plugins_own_hook(tmp_path):
    heard = []

    class Weather:
        @hookimpl
        def register_hookspecs(self):
            return [WeatherSpecs]

    class Listener:
        @hookimpl
        def forecast_made(self, city):
            heard.append(city)

    # The listener loads first: its implementation waits for the spec, then is checked.
    plugins = Plugins(
        settings_for(tmp_path), extra=[("listener", Listener()), ("weather", Weather())]
    )
    assert plugins.spec_owners["forecast_made"] == "weather"
    plugins.hook.forecast_made(app=None, city="Leeds")
    assert heard == ["Leeds"]


def test_a_plugin_hook_taking_an_argument_its_spec_lacks_names_the_plugin(tmp_path):
    class Weather:
        @hookimpl
        def register_hookspecs(self):
            return [WeatherSpecs]

    class Listener:
        @hookimpl
        def forecast_made(self, town):
            pass

    with pytest.raises(PluginError) as error:
        Plugins(settings_for(tmp_path), extra=[("listener", Listener()), ("weather", Weather())])
    assert "town" in str(error.value) and "'weather'" in str(error.value)


def test_two_plugins_cannot_specify_one_hook(tmp_path):
    class Specs:
        @hookspecs.hookspec
        def payment_succeeded(self, app, payment):
            """Already billing's."""

    class Rival:
        @hookimpl
        def register_hookspecs(self):
            return [Specs]

    with pytest.raises(PluginError) as error:
        Plugins(settings_for(tmp_path), extra=[("rival", Rival())])
    assert str(error.value) == (
        "plugin 'rival' specifies hook 'payment_succeeded', already "
        "specified by plugin 'billing'; rename one of them"
    )


def test_collecting_follows_pluggy_tryfirst_trylast_and_wrappers(tmp_path):
    def folder(name, **opts):
        class Plugin:
            @hookimpl(**opts)
            def template_dirs(self):
                return [f"/{name}"]

        return Plugin()

    class Hider:
        @hookimpl(wrapper=True)
        def template_dirs(self):
            answers = yield
            return [a for a in answers if a != ["/hidden"]]

    plugins = Plugins(
        settings_for(tmp_path),
        extra=[
            ("plain", folder("plain")),
            ("last", folder("last", trylast=True)),
            ("hidden", folder("hidden")),
            ("first", folder("first", tryfirst=True)),
            ("hider", Hider()),
        ],
    )
    assert plugins.collect("template_dirs") == [
        ("first", "/first"),
        ("plain", "/plain"),
        ("last", "/last"),
    ]


def test_hook_calls_are_traced_when_asked(tmp_path, caplog):
    settings = load_settings(
        None,
        environ={},
        overrides={
            "data_dir": str(tmp_path),
            "secret_key": "k" * 32,
            **TEST_SETTINGS,
            "debug": {"trace_hooks": True},
            "plugins": {"entry_points": False},
        },
    )

    class Quick:
        @hookimpl(tryfirst=True)
        def balance_threshold(self, customer_id):
            return 5

    plugins = Plugins(settings, extra=[("quick", Quick())])
    with caplog.at_level("INFO", logger="portico.hooks"):
        assert plugins.hook.balance_threshold(app=None, customer_id=7, balance_type="data") == 5
        plugins.collect("plugin_requires")
    lines = [r.getMessage() for r in caplog.records if r.name == "portico.hooks"]
    assert any(
        line.startswith(
            "hook balance_threshold(app=None, customer_id=7, balance_type="
            "'data') by [quick, notifications]: "
        )
        for line in lines
    )
    assert any(line.startswith("hook plugin_requires() by [account]") for line in lines)


def test_hook_calls_are_not_traced_by_default(tmp_path, caplog):
    plugins = Plugins(settings_for(tmp_path))
    with caplog.at_level("INFO", logger="portico.hooks"):
        plugins.collect("plugin_requires")
    assert not [r for r in caplog.records if r.name == "portico.hooks"]


@pytest.mark.spec("ENG-1")
@pytest.mark.parametrize("hook", sorted(SIGNATURES))
def test_hookspec_has_a_docstring(hook):
    doc = inspect.getdoc(spec_function(hook)) or ""
    assert len(doc) > 20, f"hook {hook} needs a docstring in its hookspecs.py"


@pytest.mark.spec("ENG-1")
@pytest.mark.parametrize("hook", sorted(SIGNATURES))
def test_hookspec_is_documented_once_with_its_exact_signature(hook):
    headings = [
        line for line in PLUGIN_GUIDE.read_text().splitlines() if re.match(rf"#+ `{hook}\(", line)
    ]
    assert headings == [f"#### `{SIGNATURES[hook]}`"], (
        f"docs/plugins.md must document {hook} under exactly one heading "
        f"#### `{SIGNATURES[hook]}` (copy the signature exactly)"
    )


@pytest.mark.spec("ENG-1")
@pytest.mark.parametrize("hook", sorted(SIGNATURES))
def test_hookspec_has_a_test(hook):
    assert hook in hook_test_names(), f"write a test named test_hook_{hook} under tests/"


# -- helpers ------------------------------------------------------------------------

numbers = itertools.count(1)


def customer_user(name: str = "Dana") -> User:
    """A customer with one contact, one site and one login."""
    n = next(numbers)
    customer = Customer.create(number=f"C-9{n:05d}", name=f"{name} Example")
    contact = Contact.create(
        customer=customer, first_name=name, email=f"{name.lower()}{n}@example.com"
    )
    Site.create(
        customer=customer, label="Home", line1="1 High Street", city="London", postcode="SW1A 1AA"
    )
    return User.create(contact=contact, email=f"{name.lower()}{n}@example.com")


def service_of(user: User) -> Service:
    product = Product.create(code=f"plan-{next(numbers)}", name="Mobile 10GB", monthly_fee=1000)
    return Service.create(
        customer=user.contact.customer_id, product=product, name="Mobile - +44 7700 900123"
    )


def signed_in(app, user: User | None = None) -> Client:
    return as_user(Client(app), user or customer_user())


AUTH = ("test-auth", PrincipalHeader())


# -- describing the plugin ------------------------------------------------------------


class Base:
    """A plugin others build on."""


class NeedsBase:
    @hookimpl
    def plugin_requires(self):
        return ["base"]


def test_hook_plugin_requires(make_app):
    app = make_app(plugins=[("acme", NeedsBase()), ("base", Base())])
    # Listed first, but loaded (and migrated, seeded, asked) after the plugin it needs.
    assert app.plugins.enabled[-2:] == ["base", "acme"]
    with pytest.raises(PluginError, match="plugin 'acme' needs plugin 'base', which is disabled"):
        make_app(plugins=[("acme", NeedsBase()), ("base", Base())], disabled=["base"])


class UsesBase:
    @hookimpl
    def plugin_optional(self):
        return ["base"]


def test_hook_plugin_optional(make_app):
    app = make_app(plugins=[("acme", UsesBase()), ("base", Base())])
    # Listed first, but loaded after the plugin it uses when it is there...
    assert app.plugins.enabled[-2:] == ["base", "acme"]
    # ...and without it, it loads all the same.
    app = make_app(plugins=[("acme", UsesBase()), ("base", Base())], disabled=["base"])
    assert "acme" in app.plugins.enabled and "base" not in app.plugins.enabled


class AcmeSettings(Schema):
    units = fields.String(load_default="metric", validate=validate.OneOf(["metric", "imperial"]))
    days = fields.Integer(load_default=3)


class WithSettings:
    @hookimpl
    def register_settings(self):
        return AcmeSettings


def test_hook_register_settings(make_app):
    app = make_app(plugins=[("acme", WithSettings())], acme={"units": "imperial"})
    assert app.settings.plugin("acme") == {"units": "imperial", "days": 3}
    with pytest.raises(SettingsError, match=r"acme\.units: Must be one of: metric, imperial"):
        make_app(plugins=[("acme", WithSettings())], acme={"units": "kelvin"})


# -- data, code, pages --------------------------------------------------------------------


class Gadget(BaseModel):
    name = peewee.CharField()

    class Meta:
        table_name = "acme_gadget"


def test_hook_register_models(make_app):
    class Models:
        @hookimpl
        def register_models(self):
            return [Gadget]

    app = make_app(plugins=[("acme", Models())])
    assert app.models["acme"] == [Gadget]
    assert "customer" in {m._meta.table_name for m in app.models["core"]}


class Hello:
    auth = "public"

    def on_get(self, req, resp):
        resp.media = {"hello": req.context.app.settings.base_url}


class Routes:
    @hookimpl
    def register_routes(self, app):
        return [Route("/api/v1/acme/hello", Hello())]


def test_hook_register_routes(make_app):
    app = make_app(plugins=[("acme", Routes())])
    result = Client(app).get("/api/v1/acme/hello")
    assert result.status_code == 200 and result.json == {"hello": "http://portal.test"}
    assert ("acme", "/api/v1/acme/hello") in [(p, r.path) for p, r in app.routes]


DONE: list = []


@task(max_retries=0)
def remember(app, value):
    DONE.append((value, app.settings.base_url))


def test_hook_register_actors(make_app):
    class Actors:
        @hookimpl
        def register_actors(self):
            return [remember]

    app = make_app(plugins=[("acme", Actors())])
    assert "test_hooks.remember" in app.tasks.actors  # named after the function, not the plugin
    DONE.clear()
    with app.database.atomic():
        app.tasks.enqueue(remember, 42)
    run_tasks(app)
    assert DONE == [(42, "http://portal.test")]


def test_hook_template_dirs(make_app, tmp_path):
    folder = tmp_path / "acme-templates"
    (folder / "acme").mkdir(parents=True)
    (folder / "acme" / "note.html").write_text("note for {{ who }}")

    class Templates:
        @hookimpl
        def template_dirs(self):
            return [str(folder)]

    app = make_app(plugins=[("acme", Templates())])
    assert app.theme.render_plain("acme/note.html", who="Dana") == "note for Dana"


def test_hook_static_dirs(make_app, tmp_path):
    folder = tmp_path / "acme-static"
    folder.mkdir()
    (folder / "acme.css").write_text("body { color: teal }")

    class Static:
        @hookimpl
        def static_dirs(self):
            return [str(folder)]

    app = make_app(plugins=[("acme", Static())])
    result = Client(app).get("/static/acme/acme.css")
    assert result.status_code == 200 and result.text == "body { color: teal }"
    assert Client(app).get("/static/acme/missing.css").status_code == 404


@pytest.mark.spec("ACC-3")
def test_hook_register_sections(make_app):
    class Sections:
        @hookimpl
        def register_sections(self, app):
            return [Section("gadgets", "Gadgets", "/gadgets", order=5)]

    app = make_app(plugins=[("acme", Sections())])
    items = Client(app).get("/api/v1/sections").json["items"]
    assert {
        "id": "gadgets",
        "title": "Gadgets",
        "path": "/gadgets",
        "icon": "circle",
        "order": 5,
        "primary": False,
        "plugin": "acme",
    } in items
    assert items == sorted(items, key=lambda s: (s["order"], s["id"]))  # the menu's order


@pytest.mark.spec("DASH-1")
def test_hook_dashboard_cards(make_app):
    class Cards:
        @hookimpl
        def dashboard_cards(self, app, ctx):
            return [Card("gadgets", "Gadgets", "acme/card.html", {"customer": ctx.customer_id})]

    app = make_app(plugins=[AUTH, ("acme", Cards())])
    user = customer_user()
    cards = signed_in(app, user).get("/api/v1/dashboard").json["cards"]
    assert [(c["id"], c["data"]) for c in cards if c["plugin"] == "acme"] == [
        ("gadgets", {"customer": user.contact.customer_id})
    ]


@pytest.mark.spec("NOT-2")
def test_hook_portal_alerts(make_app):
    class Alerts:
        @hookimpl
        def portal_alerts(self, app, ctx):
            return [Alert("verify-email", "warning", "Verify your email address", "/account")]

    app = make_app(plugins=[AUTH, ("acme", Alerts())])
    items = signed_in(app).get("/api/v1/alerts").json["items"]
    assert [a for a in items if a["plugin"] == "acme"] == [
        {
            "id": "verify-email",
            "level": "warning",
            "message": "Verify your email address",
            "link": "/account",
            "dismissible": True,
            "plugin": "acme",
        }
    ]


@pytest.mark.spec("SVC-3")
def test_hook_service_actions(make_app):
    class Actions:
        @hookimpl
        def service_actions(self, app, ctx, service):
            return [Action("gadget", "Add a gadget", f"/services/{service.id}/gadget")]

    app = make_app(plugins=[("acme", Actions())])
    user = customer_user()
    service = service_of(user)
    ctx = Context(
        app=app,
        principal=Principal(kind="customer", user_id=user.id, customer_id=user.contact.customer_id),
    )
    pairs = app.plugins.collect("service_actions", app=app, ctx=ctx, service=service)
    assert ("acme", Action("gadget", "Add a gadget", f"/services/{service.id}/gadget")) in pairs


def test_hook_demo_data(make_app):
    from engine.demo import seed_demo

    class Demo:
        @hookimpl
        def demo_data(self, app, demo):
            # Core ran first (load order): its customers are there to build on.
            demo["gadgets"] = sorted(c.number for c in demo["customers"].values())

    app = make_app(plugins=[("acme", Demo())])
    created = seed_demo(app)
    assert created["gadgets"] == ["C-100001", "C-100002"]
    assert seed_demo(app) is None  # seeds an empty database only


def test_hook_openapi(make_app):
    class Doc:
        @hookimpl
        def openapi(self, app, spec):
            spec.components.schema(
                "Gadget", {"type": "object", "properties": {"name": {"type": "string"}}}
            )

    app = make_app(plugins=[("acme", Doc())])
    doc = Client(app).get("/api/v1/openapi.json").json
    assert doc["components"]["schemas"]["Gadget"]["properties"] == {"name": {"type": "string"}}


# -- resolving one thing --------------------------------------------------------------------


def test_hook_authenticate_request(make_app):
    class KeyHeader:
        """Accepts ``X-Acme-Key: <user id>`` (a partner's own authentication scheme)."""

        @hookimpl
        def authenticate_request(self, app, req):
            value = req.get_header("X-Acme-Key")
            if not value:
                return None  # let the other plugins try
            user = User.get_by_id(int(value))
            return Principal(
                kind="customer", user_id=user.id, customer_id=user.contact.customer_id, via="token"
            )

    app = make_app(plugins=[("acme", KeyHeader())])
    user = customer_user()
    client = Client(app)
    assert problem(client.get("/api/v1/dashboard"))["status"] == 401
    assert client.get("/api/v1/dashboard", headers={"X-Acme-Key": str(user.id)}).status_code == 200


def test_hook_service_balances(make_app):
    def balance(remaining):
        return Balance(
            id=1,
            type="data",
            remaining=remaining,
            initial=10**9,
            unit="bytes",
            weight=30,
            expires_at=None,
        )

    class Fallback:
        @hookimpl(trylast=True)
        def service_balances(self, app, service):
            return [balance(1)]

    class Charging:
        @hookimpl
        def service_balances(self, app, service):
            return [balance(5 * 10**8)] if service.name.startswith("Mobile") else None

    app = make_app(plugins=[("fallback", Fallback()), ("charging", Charging())])
    service = service_of(customer_user())
    # First result wins: one answer, not a list of lists.
    assert app.plugins.hook.service_balances(app=app, service=service) == [balance(5 * 10**8)]
    service.name = "Broadband"
    assert app.plugins.hook.service_balances(app=app, service=service) == [balance(1)]


def test_hook_credit_balance(make_app):
    credited = []

    class Buckets:
        @hookimpl
        def credit_balance(self, app, service, credit):
            credited.append((service.id, credit.type, credit.amount))
            return {"bucket": len(credited)}

    class Second:
        @hookimpl(trylast=True)
        def credit_balance(self, app, service, credit):
            raise AssertionError("a credit must be applied once, by the first plugin that answers")

    app = make_app(plugins=[("second", Second()), ("buckets", Buckets())])
    service = service_of(customer_user())
    credit = Credit(type="data", amount=10**9, unit="bytes", reference="topup-1")
    assert app.plugins.hook.credit_balance(app=app, service=service, credit=credit) == {"bucket": 1}
    assert credited == [(service.id, "data", 10**9)]


# -- providers and channels ---------------------------------------------------------------------


class AcmePay:
    id = "acme-pay"


class AcmeSMS:
    id = "acme-sms"


def test_hook_payment_providers(make_app):
    class Pay:
        @hookimpl
        def payment_providers(self, app):
            return [AcmePay()]

    app = make_app(plugins=[("acme", Pay())])
    assert isinstance(app.providers["acme-pay"], AcmePay)


def test_hook_notification_channels(make_app):
    class Channels:
        @hookimpl
        def notification_channels(self, app):
            return [AcmeSMS()]

    app = make_app(plugins=[("acme", Channels())])
    assert isinstance(app.channels["acme-sms"], AcmeSMS)
    assert "email" in app.channels  # built in, alongside


# -- events ------------------------------------------------------------------------------------


def test_hook_audit_recorded(make_app):
    seen = []

    class Watcher:
        @hookimpl
        def audit_recorded(self, app, event):
            seen.append((event.id, event.action, event.target))

    app = make_app(plugins=[("acme", Watcher())])
    event = record_system(app, "acme.gadget_added", "gadget:7")
    assert seen == [(event.id, "acme.gadget_added", "gadget:7")]


def test_hook_notification_requested(make_app):
    seen = []

    class Listener:
        @hookimpl
        def notification_requested(self, app, event):
            seen.append((event.kind, event.key, event.category))

    app = make_app(plugins=[("acme", Listener())])
    notify(
        app, Notice(kind="gadget_ready", key="gadget:7", category="service", email="d@example.com")
    )
    assert seen == [("gadget_ready", "gadget:7", "service")]


@pytest.mark.spec("SEC-4")
def test_hook_signed_out_everywhere(make_app):
    seen = []

    class Listener:
        @hookimpl
        def signed_out_everywhere(self, app, ctx, user, reason):
            seen.append((user.id, reason, ctx.principal.user_id))

    app = make_app(plugins=[("acme", Listener()), ("test-auth", PrincipalHeader())])
    dana = customer_user()
    answer = as_user(Client(app), dana).post("/api/v1/account/sessions/end-others")
    assert answer.status_code == 200, answer.text
    assert seen == [(dana.id, "sign_out_everywhere", dana.id)]


# register_commands is tested through the installed example partner plugin, in
# tests/test_partner.py (the CLI loads plugins from entry points, as in production).
