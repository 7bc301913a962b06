"""The web app pieces served by the core (engine/core/pwa.py) and the page shell's PWA hooks.

Browser behaviour (installing, offline copies, push) is in tests/browser/test_portal_pwa.py
and test_portal_push.py; these check what the server answers, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import re

import pytest

from engine import hookimpl
from engine.context import Principal
from engine.core.pwa import OFFLINE_PAGES
from engine.testing import Client, PrincipalHeader, as_user, seed_people
from plugins.webpush.commands import keys as vapid_keys_command


@pytest.fixture
def people_app(make_app):
    app = make_app(plugins=[("test-auth", PrincipalHeader())])
    return app, seed_people(app)


@pytest.mark.spec("MOB-3")
def test_manifest_from_the_theme_in_the_visitors_language(client):
    answer = client.get("/manifest.webmanifest")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/manifest+json; charset=utf-8"
    manifest = answer.json
    assert (manifest["name"], manifest["start_url"], manifest["scope"], manifest["display"]) == (
        "Portico",
        "/",
        "/",
        "standalone",
    )
    assert manifest["theme_color"] == "#1f5fbf" and manifest["lang"] == "en"
    for icon in manifest["icons"]:
        assert re.fullmatch(r"/static/img/[\w.-]+\?v=[0-9a-f]{12}", icon["src"]), icon
        assert client.get(icon["src"]).status_code == 200
    chinese = client.get("/manifest.webmanifest", headers={"Accept-Language": "zh-CN"}).json
    assert chinese["lang"] == "zh-Hans" and chinese["description"] == "您的账户，随时随地为您服务"


@pytest.mark.spec("ENG-5", "MOB-3")
def test_a_theme_brands_the_manifest_and_the_browser_bar(make_app):
    client = Client(make_app(theme="harbour"))
    manifest = client.get("/manifest.webmanifest").json
    assert manifest["name"] == "Harbour Telecom" and manifest["theme_color"] == "#0b6e69"
    icon = next(i for i in manifest["icons"] if i["sizes"] == "192x192")
    default_icon = Client(make_app()).get("/manifest.webmanifest").json["icons"][0]
    assert icon["src"] != default_icon["src"]  # harbour ships its own icons
    assert '<meta name="theme-color" content="#0b6e69">' in client.get("/").text


@pytest.mark.spec("MOB-3")
def test_service_worker_lists_the_current_shell_and_revalidates(client):
    answer = client.get("/sw.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert answer.headers["cache-control"] == "no-cache"
    config = json.loads(re.match(r"self\.PORTICO = (.*);\n", answer.text).group(1))
    assert config["offlinePages"] == list(OFFLINE_PAGES)
    page = client.get("/").text
    for url in config["shell"]:
        assert client.get(url).status_code == 200, url
        if url.startswith("/static/css/portico.css"):
            assert url in page  # the very URL pages use, so the worker's copy is the one used
    assert "__VERSION__" not in answer.text
    assert re.search(r'"portico-shell-[0-9a-f]{12}"', answer.text)


def test_service_worker_changes_with_the_shell(make_app):
    default = Client(make_app()).get("/sw.js").text
    harbour = Client(make_app(theme="harbour")).get("/sw.js").text
    shell_name = re.compile(r'portico-shell-[0-9a-f]{12}')
    assert shell_name.search(default).group() != shell_name.search(harbour).group()
    assert "/static/css/theme.css?v=" in harbour and "/static/css/theme.css" not in default


@pytest.mark.parametrize(
    "path, kept",
    [
        ("/", True),
        ("/services", True),
        ("/services/12", False),
        ("/usage", True),
        ("/services/12/usage", True),
        ("/billing", True),
        ("/billing/invoices/3", True),
        ("/billing/transactions", True),
        ("/account", False),
        ("/account/api-keys", False),
        ("/billing/invoices/3/pay", False),
        ("/login", False),
        ("/services/12/cancel", False),
    ],
)
def test_only_overview_pages_are_kept_for_offline(path, kept):
    assert any(re.search(p, path) for p in OFFLINE_PAGES) is kept


@pytest.mark.spec("MOB-3", "LIM-2")
def test_offline_page_is_the_same_for_everyone(people_app):
    app, demo = people_app
    alice = as_user(Client(app), demo["users"]["alice"])
    assert 'action="/logout"' in alice.get("/").text
    page = alice.get("/offline")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
    assert "You are offline" in page.text
    assert 'action="/logout"' not in page.text and "Your customer ID" not in page.text
    assert 'data-signed-in="no"' in page.text


class Impersonating:
    """Every request is staff member ``staff_id`` acting as ``user``."""

    def __init__(self, user, staff_id):
        self.user, self.staff_id = user, staff_id

    @hookimpl(tryfirst=True)
    def authenticate_request(self, app, req):
        u = self.user
        return Principal(
            kind="customer",
            user_id=u.id,
            customer_id=u.contact.customer_id,
            contact_id=u.contact_id,
            impersonator_id=self.staff_id,
        )


@pytest.mark.spec("MOB-3", "IMP-3")
def test_pages_say_whether_the_worker_may_keep_them(people_app, make_app):
    app, demo = people_app
    assert 'data-signed-in="no"\n      data-offline="no"' in Client(app).get("/").text
    own = as_user(Client(app), demo["users"]["alice"]).get("/").text
    assert 'data-signed-in="yes"\n      data-offline="keep"' in own
    staff = make_app(
        plugins=[("imp", Impersonating(demo["users"]["alice"], demo["staff"]["agent"].id))],
        migrate=False,
    )
    acting = Client(staff).get("/").text
    assert "acting as this customer" in acting
    assert 'data-signed-in="yes"\n      data-offline="no"' in acting


@pytest.mark.spec("MOB-3", "NOT-4")
def test_push_switch_only_where_web_push_is_configured(people_app, make_app):
    app, demo = people_app
    alice = demo["users"]["alice"]
    plain = as_user(Client(app), alice).get("/account/notifications").text
    assert "data-push" not in plain
    from click.testing import CliRunner

    output = CliRunner().invoke(vapid_keys_command).output
    keys = {
        k: v.split('"')[1]
        for k, v in (line.split(" = ") for line in output.splitlines() if " = " in line)
    }
    pushing = make_app(plugins=[("test-auth", PrincipalHeader())], webpush=keys, migrate=False)
    page = as_user(Client(pushing), alice).get("/account/notifications").text
    assert re.search(
        r'<section class="panel" aria-labelledby="push-title" data-push hidden '
        r'data-csrf="[0-9a-f]{64}"',
        page,
    )
    assert "Turn on for this device" in page


def test_every_page_links_the_manifest_script_and_icons(client):
    page = client.get("/login").text
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page
    assert re.search(r'<script src="/static/js/portal.js\?v=[0-9a-f]{12}" defer></script>', page)
    assert re.search(r'<use href="/static/img/icons.svg\?v=[0-9a-f]{12}#i-install"/>', page)
    assert 'data-install hidden' in page and "data-offline-note hidden" in page
