"""SEC-5: every staff route declares its permission where it is registered, the middleware
checks it, and docs/identity.md lists every permission that exists.

The routes come from the live app with every plugin enabled (partner plugins too), so a new
staff route anywhere is covered without editing this file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine import hookimpl
from engine.models import StaffUser
from engine.plugins import PluginError
from engine.registry import ANY_STAFF, PUBLIC, Route
from engine.security import hash_password
from engine.testing import DEMO_PASSWORD, Client, seed_people
from test_isolation import PARAM, all_routes

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "identity.md"
# Permission names asked for in code: principal.can("x"), staff.has("x").
ASKED = re.compile(r"""\.(?:can|has)\(\s*["']([a-z][a-z0-9_]*)["']\s*\)""")


def documented_permissions() -> set[str]:
    """The first column of the table under "## Staff permissions" in docs/identity.md."""
    text = DOCS.read_text()
    section = text.split("## Staff permissions", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z][a-z0-9_]*)` \|", section, re.M))


def permissions_in_code() -> set[str]:
    found = set()
    for folder in ("engine", "plugins"):
        for path in (ROOT / folder).rglob("*.py"):
            found |= set(ASKED.findall(path.read_text()))
    return found


@pytest.mark.spec("SEC-5")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # routes: no SQL in it
def test_every_staff_route_declares_its_permission_and_the_docs_list_them(make_app):
    app = make_app(entry_points=True)
    assert not set(app.plugins.info) - set(app.plugins.enabled), "every plugin enabled"
    table = app.staff_permissions()
    lines = []
    for plugin, path, _auth, methods in all_routes(app):
        if not path.startswith(("/staff", "/api/v1/staff")):
            continue
        for method in methods:
            need = app.permission_for(path, method.upper())
            lines.append(f"{method.upper():6} {path:60} {need} ({plugin})")
            assert need is not None, f"{method.upper()} {path} ({plugin}) declares nothing"
            assert f"{method.upper()} {path}" in table[need]
    print("staff routes and what they need:\n" + "\n".join(lines))
    assert len(lines) >= 40
    # The API document says it too, per operation.
    paths = Client(app).get("/api/v1/openapi.json").json["paths"]
    for need, routes in table.items():
        for route in routes:
            method, path = route.split(" ", 1)
            if path.startswith("/api/v1/"):
                op = paths[path[len("/api/v1") :]][method.lower()]
                assert op["x-portico-permission"] == need, route
                assert ("security" in op) is (need != PUBLIC), route
    names = set(table) - {PUBLIC, ANY_STAFF}
    assert {"admin", "billing", "catalogue", "can_impersonate", "can_post_usage"} <= names
    documented = documented_permissions()
    assert names | permissions_in_code() <= documented, (
        f"docs/identity.md does not list: {sorted(names | permissions_in_code() - documented)}"
    )
    assert documented <= names, f"documented but nothing needs it: {sorted(documented - names)}"


class Undeclared:
    """A plugin that mounts a staff route and says nothing about who may call it."""

    def __init__(self, path: str, **route):
        self.path, self.route = path, route

    @hookimpl
    def register_routes(self, app):
        class Thing:
            def on_get(self, req, resp):
                resp.media = {"secret": "staff only"}

        return [Route(self.path, Thing(), **self.route)]


@pytest.mark.spec("SEC-5")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "path, route, message",
    [
        ("/api/v1/staff/things", {}, "a staff route must declare who may call it"),
        ("/staff/things", {}, "a staff route must declare who may call it"),
        ("/api/v1/staff/things", {"permission": "Billing!"}, "permission 'Billing!' is not a"),
        ("/api/v1/things", {"permission": "billing"}, "permission is only for staff routes"),
    ],
)
def test_an_undeclared_staff_route_stops_start_up(make_app, path, route, message):
    with pytest.raises(PluginError) as exc:
        make_app(plugins=[("things", Undeclared(path, **route))], migrate=False)
    assert str(exc.value).startswith(f"plugin 'things' route '{path}': {message}")


@pytest.mark.spec("SEC-5", "IMP-2")
def test_the_middleware_holds_each_staff_route_to_its_declaration(make_app):
    """A staff member without permissions is refused (403, before any input is read) on every
    route that names one, and reaches every ``ANY_STAFF`` route; signed out, nothing."""
    app = make_app()
    seed_people(app)
    StaffUser.create(
        email="plain@example.com",
        name="Pat Plain",
        permissions="",
        password_hash=hash_password(DEMO_PASSWORD),
    )
    plain, anonymous = Client(app), Client(app)
    plain.login("plain@example.com", staff=True)
    refused = reached = 0
    for _plugin, path, _auth, methods in all_routes(app):
        if not path.startswith(("/staff", "/api/v1/staff")) or "logout" in path:
            continue
        concrete = PARAM.sub("1", path)
        page = not path.startswith("/api/")
        for method in methods:
            need = app.permission_for(path, method.upper())
            body = (
                {"form": {}}
                if page and method != "get"
                else {"json": {}}
                if method != "get"
                else {}
            )
            answer = plain.request(method.upper(), concrete, **body)
            where = f"{method.upper()} {concrete} ({need})"
            if need not in (PUBLIC, ANY_STAFF):
                assert answer.status_code == 403, f"{where}: {answer.status_code}"
                refused += 1
            else:
                assert answer.status_code not in (401, 403), f"{where}: {answer.status_code}"
                reached += 1
            if need != PUBLIC:
                gone = anonymous.request(method.upper(), concrete, **body)
                assert gone.status_code == (303 if page else 401), f"{where} signed out"
    assert refused >= 15 and reached >= 15


@pytest.mark.spec("SEC-5")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_staff_command_lists_permissions_and_refuses_unknown_ones(make_app):
    from click.testing import CliRunner
    from plugins.staff.commands import staff_group

    app = make_app()
    listed = CliRunner().invoke(staff_group(lambda: app), ["permissions"])
    assert listed.exit_code == 0, listed.output
    assert "admin  (every permission)" in listed.output
    assert "can_post_usage\n    POST /api/v1/staff/usage" in listed.output
    typo = CliRunner().invoke(
        staff_group(lambda: app),
        ["add", "sam@example.com", "--name", "Sam", "--permissions", "biling", "--password-stdin"],
        input=DEMO_PASSWORD + "\n",
    )
    assert typo.exit_code != 0 and "unknown permission biling" in typo.output
    assert StaffUser.select().where(StaffUser.email == "sam@example.com").count() == 0
