"""Themes (ENG-4, ENG-5): the template and static chain, `default:` extends, caching, safety."""

from __future__ import annotations

import importlib
import re
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.testing import TEST_ENVIRON, Client
from engine.theming import THEMES_DIR, ThemeError

DEFAULT_STATIC = THEMES_DIR / "default" / "static"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


@pytest.fixture
def themes(tmp_path):
    """An operator's theme folder (``theme_paths``) holding the theme ``acme``."""
    root = tmp_path / "operator-themes"
    write(root / "acme" / "theme.toml", 'brand_name = "Acme Mobile"\n')
    return root


@pytest.fixture
def acme_plugin(tmp_path, monkeypatch):
    """A partner plugin package with its own templates/ and static/ folders."""
    pkg = tmp_path / "site" / "acme_widgets"
    write(
        pkg / "__init__.py",
        """
        from engine import hookimpl
        from engine.registry import Route

        class Page:
            auth = "public"
            def on_get(self, req, resp):
                req.context.app.page(req, resp, "acme_widgets/page.html")

        @hookimpl
        def register_routes(app):
            return [Route("/acme", Page())]
        """,
    )
    write(
        pkg / "templates" / "acme_widgets" / "page.html",
        """
        {% extends "base.html" %}
        {% block content %}<p id="acme">{% block message %}plugin page{% endblock %}</p>{% endblock %}
        """,
    )
    write(pkg / "static" / "widget.js", "console.log('plugin widget');\n")
    write(pkg / "static" / "img" / "w.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    module = importlib.import_module("acme_widgets")
    yield module
    sys.modules.pop("acme_widgets", None)


def themed(make_app, themes, *plugins, **settings):
    app = make_app(plugins=list(plugins), theme="acme", theme_paths=[str(themes)], **settings)
    return Client(app)


# -- templates -------------------------------------------------------------------


@pytest.mark.spec("ENG-5")
def test_theme_overrides_a_plugin_template_and_keeps_the_rest(make_app, themes):
    write(
        themes / "acme" / "templates" / "dashboard" / "welcome.html",
        """
        {% extends "base.html" %}
        {% block content %}<h1>Acme says hello</h1>{% endblock %}
        """,
    )
    page = themed(make_app, themes).get("/")
    assert page.status_code == 200
    assert "Acme says hello" in page.text
    assert "Your account, whenever you need it" not in page.text  # the plugin's own page
    assert "data-install" in page.text  # the default theme's layout (its footer) still wraps it


@pytest.mark.spec("ENG-5")
def test_theme_extends_the_template_it_replaces_with_the_default_prefix(make_app, themes):
    write(
        themes / "acme" / "templates" / "base.html",
        """
        {% extends "default:base.html" %}
        {% block brand %}<span class="acme-brand">ACME</span>{{ super() }}{% endblock %}
        """,
    )
    write(
        themes / "acme" / "templates" / "dashboard" / "welcome.html",
        """
        {% extends "default:dashboard/welcome.html" %}
        {% block title %}Acme welcome{% endblock %}
        """,
    )
    page = themed(make_app, themes).get("/").text
    assert '<span class="acme-brand">ACME</span>' in page
    assert "/static/img/logo.svg?v=" in page  # super(): the default brand block follows
    assert "<title>Acme welcome" in page
    assert "Your account, whenever you need it" in page  # the plugin's content, extended


@pytest.mark.spec("ENG-4", "ENG-5")
def test_theme_overrides_a_partner_plugin_template(make_app, themes, acme_plugin):
    client = themed(make_app, themes, ("acme_widgets", acme_plugin))
    assert '<p id="acme">plugin page</p>' in client.get("/acme").text
    write(
        themes / "acme" / "templates" / "acme_widgets" / "page.html",
        """
        {% extends "default:acme_widgets/page.html" %}
        {% block message %}themed page{% endblock %}
        """,
    )
    client = themed(make_app, themes, ("acme_widgets", acme_plugin))
    assert '<p id="acme">themed page</p>' in client.get("/acme").text


def test_templates_missing_from_the_theme_fall_back_to_the_default(make_app, themes):
    write(themes / "acme" / "static" / "css" / "theme.css", ":root { --brand: #c00; }")
    page = themed(make_app, themes).get("/no-such-page", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert 'id="error-title"' in page.text  # the default theme's error.html
    assert "/static/css/theme.css?v=" in page.text


def test_theme_css_is_linked_only_when_the_theme_has_one(make_app):
    default_page = Client(make_app()).get("/").text
    assert "css/theme.css" not in default_page
    harbour_page = Client(make_app(theme="harbour")).get("/").text
    css = re.search(r'href="(/static/css/theme\.css\?v=\w+)"', harbour_page)
    assert css, "harbour's theme.css is not linked"
    assert harbour_page.index("css/portico.css") < harbour_page.index("css/theme.css")


@pytest.mark.spec("ENG-5")
def test_harbour_overrides_only_logo_colours_and_one_template(make_app):
    harbour = THEMES_DIR / "harbour"
    own = sorted(str(p.relative_to(harbour)) for p in harbour.rglob("*") if p.is_file())
    assert own == [
        "static/css/theme-dark.css",
        "static/css/theme.css",
        "static/img/icon-180.png",
        "static/img/icon-192.png",
        "static/img/icon-512.png",
        "static/img/icon-maskable-512.png",
        "static/img/logo.svg",
        "templates/dashboard/welcome.html",
        "theme.toml",
    ]
    client = Client(make_app(theme="harbour"))
    page = client.get("/").text
    assert "Welcome to Harbour Telecom" in page
    assert (
        "<span>Harbour Telecom</span>" in page
    )  # brand_name from theme.toml, in default base.html
    assert "data-install" in page  # the default base.html's footer
    logo = client.get("/static/img/logo.svg")
    assert logo.content == (harbour / "static/img/logo.svg").read_bytes()
    assert logo.content != (DEFAULT_STATIC / "img/logo.svg").read_bytes()
    css = client.get("/static/css/portico.css")
    assert css.content == (DEFAULT_STATIC / "css/portico.css").read_bytes()
    assert "--brand: #0b6e69" in client.get("/static/css/theme.css").text


def test_default_theme_shows_the_portico_brand(client):
    assert "<span>Portico</span>" in client.get("/").text


# -- start-up errors ---------------------------------------------------------------


@pytest.mark.spec("ENG-5")
def test_unknown_theme_is_a_start_up_error_naming_the_key(make_app):
    with pytest.raises(ThemeError) as error:
        make_app(theme="harbor")
    message = str(error.value)
    assert message.startswith("theme: no theme named 'harbor'")
    assert "default, harbour" in message and "theme_paths" in message


def test_theme_paths_entry_that_is_not_a_folder_is_a_start_up_error(make_app, tmp_path):
    with pytest.raises(ThemeError, match="theme_paths: '.*nowhere' is not a folder"):
        make_app(theme_paths=[str(tmp_path / "nowhere")])


@pytest.mark.parametrize("name", ["../default", "", ".hidden"])
def test_theme_name_must_be_a_plain_folder_name(make_app, name):
    with pytest.raises(ThemeError, match="is not a theme name"):
        make_app(theme=name)


def test_cli_reports_unknown_theme_without_a_traceback(tmp_path, monkeypatch):
    from engine.cli import cli

    monkeypatch.chdir(tmp_path)
    # `serve` names its metrics folder in os.environ for gunicorn's workers: a folder of this
    # test's own, undone after it, so later tests in this process keep in-memory metrics.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    env = {
        **TEST_ENVIRON,
        "PORTICO_THEME": "harbor",
        "PORTICO_DATA_DIR": str(tmp_path / "var"),
        "PORTICO_SECRET_KEY": "k" * 40,
        "PORTICO_PLUGINS_ENTRY_POINTS": "false",
    }
    for command in (["check"], ["serve", "--port", "1"]):
        result = CliRunner().invoke(cli, command, env=env)
        assert result.exit_code == 1, (command, result.output)
        assert "theme: no theme named 'harbor'" in result.output
        assert "Traceback" not in result.output


# -- static files ----------------------------------------------------------------


@pytest.mark.spec("ENG-5")
def test_theme_overrides_a_static_file_and_falls_back_for_others(make_app, themes):
    write(themes / "acme" / "static" / "img" / "logo.svg", "<svg id='acme'/>")
    client = themed(make_app, themes)
    assert client.get("/static/img/logo.svg").text == "<svg id='acme'/>"
    css = client.get("/static/css/portico.css")
    assert css.status_code == 200
    assert css.content == (DEFAULT_STATIC / "css/portico.css").read_bytes()


@pytest.mark.spec("ENG-4", "ENG-5")
def test_plugin_static_files_are_served_under_their_name_and_a_theme_overrides_them(
    make_app, themes, acme_plugin
):
    client = themed(make_app, themes, ("acme_widgets", acme_plugin))
    widget = client.get("/static/acme_widgets/widget.js")
    assert widget.status_code == 200
    assert widget.text == "console.log('plugin widget');\n"
    assert widget.headers["content-type"].startswith("text/javascript")
    assert (
        client.get("/static/acme_widgets/img/w.svg").headers["content-type"]
        == "image/svg+xml; charset=utf-8"
    )

    write(themes / "acme" / "static" / "acme_widgets" / "widget.js", "console.log('themed');\n")
    client = themed(make_app, themes, ("acme_widgets", acme_plugin))
    assert client.get("/static/acme_widgets/widget.js").text == "console.log('themed');\n"
    assert client.get("/static/acme_widgets/img/w.svg").status_code == 200  # rest from the plugin


def test_a_hyphenated_plugin_name_is_its_static_prefix(make_app, acme_plugin):
    client = Client(make_app(plugins=[("acme-widgets", acme_plugin)]))
    assert client.get("/static/acme-widgets/widget.js").status_code == 200


@pytest.mark.parametrize(
    "toml,error",
    [
        ('brandname = "Acme"', "unknown key 'brandname' (known: brand_name, theme_color)"),
        ("brand_name = 42", "'brand_name' must be a str"),
        ("brand_name = ", "is not valid TOML"),
    ],
)
def test_a_mistake_in_theme_toml_is_a_start_up_error(make_app, themes, toml, error):
    write(themes / "acme" / "theme.toml", toml)
    with pytest.raises(ThemeError, match=re.escape(error)):
        themed(make_app, themes)


def test_extra_static_and_template_dirs_from_hooks(make_app, tmp_path):
    from engine import hookimpl

    extra = tmp_path / "extra"
    write(extra / "static" / "extra.css", "p{}")
    write(extra / "templates" / "extra" / "hello.html", "hello from a hook folder")

    class Extra:
        @hookimpl
        def static_dirs(self):
            return [str(extra / "static")]

        @hookimpl
        def template_dirs(self):
            return [str(extra / "templates")]

    app = make_app(plugins=[("extra", Extra())])
    assert Client(app).get("/static/extra/extra.css").text == "p{}"
    assert app.theme.env.get_template("extra/hello.html").render() == "hello from a hook folder"


def test_a_disabled_plugins_static_files_are_gone(make_app, acme_plugin):
    client = Client(make_app(plugins=[("acme_widgets", acme_plugin)], disabled=["acme_widgets"]))
    assert client.get("/static/acme_widgets/widget.js").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/static/../setup.cfg",
        "/static/%2e%2e/%2e%2e/setup.cfg",
        "/static/css/..%2F..%2F..%2F..%2Fsetup.cfg",
        "/static/css/%2e%2e/%2e%2e/%2e%2e/%2e%2e/engine/app.py",
        "/static/dashboard/../../../engine/app.py",
        "/static//etc/passwd",
        "/static/%2Fetc%2Fpasswd",
        "/static/css/portico.css%00.png",
        "/static/css\\..\\..\\setup.cfg",
        "/static/.hidden",
        "/static/css/",
        "/static/",
    ],
)
def test_static_path_traversal_is_a_404(client, path):
    result = client.get(path)
    assert result.status_code == 404, (path, result.status_code, result.text[:200])


def test_a_symlink_out_of_a_static_folder_is_not_followed(make_app, themes, tmp_path):
    secret = write(tmp_path / "secret.txt", "do not serve")
    (themes / "acme" / "static").mkdir(parents=True)
    (themes / "acme" / "static" / "leak.txt").symlink_to(secret)
    assert themed(make_app, themes).get("/static/leak.txt").status_code == 404


def test_fingerprinted_urls_are_cached_for_a_year(client, app):
    url = app.theme.static_url("css/portico.css")
    assert re.fullmatch(r"/static/css/portico\.css\?v=[0-9a-f]{12}", url)
    path, _, query = url.partition("?")
    result = client.get(path, query_string=query)
    assert result.status_code == 200
    assert result.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert result.headers["content-type"] == "text/css; charset=utf-8"
    assert "set-cookie" not in result.headers


@pytest.mark.parametrize("query", [None, "v=000000000000"])
def test_other_static_urls_get_a_short_cache(client, query):
    result = client.get("/static/css/portico.css", query_string=query)
    assert result.status_code == 200
    assert result.headers["cache-control"] == "public, max-age=300"


def test_static_etag_answers_304_when_unchanged(client):
    first = client.get("/static/img/logo.svg")
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{12}"', etag)
    again = client.get("/static/img/logo.svg", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    changed = client.get("/static/img/logo.svg", headers={"If-None-Match": '"0123456789ab"'})
    assert changed.status_code == 200 and changed.content == first.content


def test_static_url_changes_when_the_file_changes(make_app, themes):
    css = write(themes / "acme" / "static" / "css" / "theme.css", ":root{--brand:#111}")
    before = themed(make_app, themes).app.theme.static_url("css/theme.css")
    css.write_text(":root{--brand:#222}")
    after = themed(make_app, themes).app.theme.static_url("css/theme.css")
    assert before != after


def test_a_static_file_is_read_and_hashed_once_per_process(make_app, themes, monkeypatch):
    """A request serves the file from memory: it is not read (or hashed) from disk again,
    so the bytes, the ETag and the fingerprinted URL always agree until the next start."""
    css = write(themes / "acme" / "static" / "css" / "theme.css", ":root{--brand:#111}")
    client = themed(make_app, themes)
    url = client.app.theme.static_url("css/theme.css")
    first = client.get(url.partition("?")[0], query_string=url.partition("?")[2])
    assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    css.write_text(":root{--brand:#222}")
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"read {self} again"))
    for _ in range(3):
        again = client.get("/static/css/theme.css")
        assert again.text == ":root{--brand:#111}"
        assert again.headers["etag"] == first.headers["etag"]
    assert client.app.theme.static_url("css/theme.css") == url


def test_head_request_for_a_static_file(client):
    result = client.request("HEAD", "/static/css/portico.css")
    assert result.status_code == 200
    assert result.headers["etag"]


def test_error_page_titles_go_through_the_catalogues(make_app, themes):
    write(
        themes / "acme" / "locale" / "zh_Hans" / "LC_MESSAGES" / "messages.po",
        '''
        msgid ""
        msgstr ""
        "Content-Type: text/plain; charset=utf-8\\n"

        msgid "Page not found"
        msgstr "找不到页面"
        ''',
    )
    client = themed(make_app, themes)
    page = client.get("/nowhere", headers={"Accept-Language": "zh-CN", "Accept": "text/html"})
    assert page.status_code == 404
    assert '<h1 id="error-title">找不到页面</h1>' in page.text
    english = client.get("/nowhere", headers={"Accept": "text/html"}).text
    assert '<h1 id="error-title">Page not found</h1>' in english
