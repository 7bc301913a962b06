"""Languages: locale negotiation, the switcher, catalogues, and per-locale formatting."""

from __future__ import annotations

import re
import textwrap
from collections import defaultdict
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import hookimpl
from engine.context import Principal
from engine.i18n import ENGINE_LOCALE_DIR, LOCALES, Translator, accept_language, current_locale
from engine.models import AuditEvent, User
from engine.testing import Client, as_user
from engine.theming import Formatter

ROOT = Path(__file__).resolve().parent.parent
EN_HERO = "Your account, whenever you need it"
ZH_HERO = "您的账户，随时随地为您服务"


def zh(message: str) -> str:
    return Translator().get("zh_Hans").gettext(message)


def speaks_chinese(html: str) -> bool:
    return '<html lang="zh-Hans">' in html and ZH_HERO in html and EN_HERO not in html


def speaks_english(html: str) -> bool:
    return '<html lang="en">' in html and EN_HERO in html


# -- negotiation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "zh-CN",
        "zh-CN,zh;q=0.9,en;q=0.8",
        "zh",
        "zh-Hans-SG",
        "en;q=0.5, zh-CN;q=0.9",
        "fr-FR, zh-SG;q=0.7",
    ],
)
def test_accept_language_chinese_gets_simplified_chinese(client, header):
    page = client.get("/", headers={"Accept-Language": header})
    assert speaks_chinese(page.text), header
    assert "简体中文" in page.text


@pytest.mark.parametrize(
    "header",
    [
        "",
        "en-GB,en;q=0.9",
        "fr-FR",
        "zh-TW",
        "zh-Hant-HK",
        "zh-CN;q=0, en;q=0.1",
        "*",
        ";;;q=abc,,",
    ],
)
def test_other_languages_get_the_default(client, header):
    assert speaks_english(client.get("/", headers={"Accept-Language": header}).text), header


def test_operator_default_locale_applies_without_a_preference(make_app):
    client = Client(make_app(default_locale="zh_Hans"))
    assert speaks_chinese(client.get("/").text)
    assert speaks_english(client.get("/", headers={"Accept-Language": "en-US"}).text)


def test_accept_language_ranks_by_quality():
    assert accept_language("en;q=0.5, zh-CN;q=0.9, fr") == ["fr", "zh-CN", "en"]
    assert accept_language("de;q=0, it") == ["it"]


@settings(max_examples=200, deadline=None)
@given(header=st.text(max_size=60), cookie=st.text(max_size=20))
def test_negotiation_never_fails_on_garbage(header, cookie):
    class Req:
        cookies = {"lang": cookie}
        context = type("Ctx", (), {"extra": {}, "app": None})()

        def get_header(self, name):
            return header

    assert Translator.negotiate(TRANSLATOR, Req(), None) in LOCALES


TRANSLATOR = Translator()


def test_switcher_sets_the_language_cookie(client):
    assert speaks_english(client.get("/").text)
    answer = client.post("/lang", form={"lang": "zh_Hans", "next": "/?tab=1"})
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("/?tab=1")
    cookie = answer.cookies["lang"]
    assert cookie.value == "zh_Hans" and cookie.http_only and cookie.same_site == "Lax"
    # the choice beats the browser's Accept-Language
    assert speaks_chinese(client.get("/", headers={"Accept-Language": "en"}).text)
    client.post("/lang", form={"lang": "en"})
    assert speaks_english(client.get("/", headers={"Accept-Language": "zh-CN"}).text)


def test_switcher_needs_the_csrf_token(client):
    client.get("/")
    answer = client.post("/lang", form={"lang": "zh_Hans"}, csrf=False)
    assert answer.status_code == 403
    assert "lang" not in answer.cookies


@pytest.mark.parametrize("lang", ["fr", "zh_Hant", "", "../../etc"])
def test_switcher_refuses_unknown_languages(client, lang):
    answer = client.post("/lang", form={"lang": lang})
    assert answer.status_code == 400
    assert "lang" not in answer.cookies
    assert "Choose one of: en, zh_Hans" in answer.text


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "/ok\r\nSet-Cookie: x=1",
    ],
)
def test_switcher_never_redirects_off_site(client, target):
    answer = client.post("/lang", form={"lang": "en", "next": target})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


def test_switcher_form_returns_to_the_current_page(client):
    page = client.get("/?from=here").text
    assert '<input type="hidden" name="next" value="/?from=here">' in page


def test_error_pages_speak_the_visitors_language(client):
    page = client.get("/no-such-page", headers={"Accept-Language": "zh-CN", "Accept": "text/html"})
    assert page.status_code == 404
    assert '<html lang="zh-Hans">' in page.text
    assert zh("Back to the dashboard") in page.text


# -- the user's preference -----------------------------------------------------------


@pytest.fixture
def signed_in(make_app):
    """An app that authenticates ``X-Test-User``, and a customer user with no language set."""
    from engine.models import Contact, Customer
    from engine.testing import PrincipalHeader

    app = make_app(plugins=[("test-auth", PrincipalHeader())])
    customer = Customer.create(number="C-900001", name="Li Na", kind="individual")
    contact = Contact.create(
        customer=customer,
        first_name="Li",
        last_name="Na",
        email="li.na@example.com",
        is_primary=True,
    )
    return app, User.create(contact=contact, email="li.na@example.com")


def test_user_preference_beats_cookie_and_browser(signed_in):
    app, alice = signed_in
    User.update(locale="zh_Hans").where(User.id == alice.id).execute()
    client = as_user(Client(app), alice)
    client.cookies["lang"] = "en"
    page = client.get("/", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert '<html lang="zh-Hans">' in page.text and zh("Dashboard") in page.text


def test_signed_in_switch_saves_the_preference_and_audits_it(signed_in):
    app, alice = signed_in
    client = as_user(Client(app), alice)
    answer = client.post("/lang", form={"lang": "zh_Hans"})
    assert answer.status_code == 303
    assert User.get_by_id(alice.id).locale == "zh_Hans"
    event = AuditEvent.select().where(AuditEvent.action == "account.language_changed").get()
    assert event.user_id == alice.id and event.data == {"from": "", "to": "zh_Hans"}
    assert '<html lang="zh-Hans">' in client.get("/").text


class Impersonating:
    """Authenticates every request as staff member 1 acting as the given user."""

    def __init__(self, user):
        self.user = user

    @hookimpl(tryfirst=True)
    def authenticate_request(self, app, req):
        u = self.user
        return Principal(
            kind="customer",
            user_id=u.id,
            customer_id=u.contact.customer_id,
            contact_id=u.contact_id,
            impersonator_id=1,
            locale="en",
        )


def test_staff_switch_under_impersonation_leaves_the_customers_preference(make_app, signed_in):
    _, alice = signed_in
    app = make_app(plugins=[("test-auth", Impersonating(alice))], migrate=False)
    client = Client(app)
    answer = client.post("/lang", form={"lang": "zh_Hans"})
    assert answer.status_code == 303
    assert User.get_by_id(alice.id).locale == ""
    assert not AuditEvent.select().where(AuditEvent.action == "account.language_changed").exists()
    assert '<html lang="zh-Hans">' in client.get("/").text  # staff read their own language


# -- catalogues ----------------------------------------------------------------------


def extracted() -> dict[str, set[str]]:
    """Every message id in engine/, plugins/ and themes/ as babel.cfg extracts it."""
    with open(ROOT / "babel.cfg") as f:
        method_map, options_map = parse_mapping_cfg(f)
    found: dict[str, set[str]] = defaultdict(set)
    for folder in ("engine", "plugins", "themes"):
        for filename, lineno, message, _, _ in extract_from_dir(
            ROOT / folder, method_map, options_map
        ):
            msgid = message if isinstance(message, str) else message[0]
            found[msgid].add(f"{folder}/{filename}:{lineno}")
    return found


def catalog(locale: str | None):
    path = (
        ENGINE_LOCALE_DIR / "messages.pot"
        if locale is None
        else ENGINE_LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    )
    with path.open("rb") as f:
        return read_po(f, locale=locale)


UPDATE = (
    "run the extract and update commands of docs/themes.md (Translations), "
    "then translate the new entries in engine/locale/zh_Hans/LC_MESSAGES/messages.po"
)


def test_every_string_in_the_templates_is_in_every_catalogue():
    strings = extracted()
    assert {"Customer portal", "Back to the dashboard", "Dashboard", EN_HERO} <= set(strings)
    for locale in (None, *LOCALES):
        ids = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog(locale) if m.id}
        missing = {s: sorted(w) for s, w in strings.items() if s not in ids}
        assert not missing, f"{locale or 'messages.pot'} lacks {missing}: {UPDATE}"


def test_every_string_has_a_chinese_translation():
    untranslated = [
        m.id
        for m in catalog("zh_Hans")
        if m.id
        and ("fuzzy" in m.flags or not all(m.string if isinstance(m.string, tuple) else [m.string]))
    ]
    assert not untranslated, f"untranslated or fuzzy in zh_Hans: {untranslated}"


PLACEHOLDER = re.compile(r"%\((\w+)\)[#0 +-]*\d*(?:\.\d+)?[sdif]")


def test_translations_keep_the_placeholders_and_format_cleanly():
    """Templates %-format every ``_()`` string, so a stray "%" breaks the page."""
    for m in catalog("zh_Hans"):
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        wanted = set(PLACEHOLDER.findall(ids[0]))
        for text in (*ids, *strings):
            assert set(PLACEHOLDER.findall(text)) <= wanted | {"num"}, (m.id, text)
            try:
                text % defaultdict(lambda: 1)
            except (ValueError, TypeError) as exc:
                pytest.fail(
                    f"{text!r} (from {m.locations}) is not a valid format string: {exc}; "
                    f"write a literal % as %%"
                )
        for text in strings:
            assert set(PLACEHOLDER.findall(text)) >= wanted - {"num"}, (m.id, text)


def test_plugin_and_theme_catalogues_merge_over_the_engines(make_app, tmp_path, monkeypatch):
    import importlib
    import sys

    po = textwrap.dedent('''
        msgid ""
        msgstr ""
        "Content-Type: text/plain; charset=utf-8\\n"

        msgid "{id}"
        msgstr "{text}"
        ''')
    pkg = tmp_path / "site" / "zh_extra"
    (pkg / "locale" / "zh_Hans" / "LC_MESSAGES").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "locale" / "zh_Hans" / "LC_MESSAGES" / "messages.po").write_text(
        po.format(id="Top up now", text="立即充值"), encoding="utf-8"
    )
    theme = tmp_path / "themes" / "acme" / "locale" / "zh_Hans" / "LC_MESSAGES"
    theme.mkdir(parents=True)
    (theme / "messages.po").write_text(po.format(id="Sign in", text="登录 Acme"), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    module = importlib.import_module("zh_extra")
    try:
        app = make_app(
            plugins=[("zh_extra", module)], theme="acme", theme_paths=[str(tmp_path / "themes")]
        )
    finally:
        sys.modules.pop("zh_extra", None)
    token = current_locale.set("zh_Hans")
    try:
        assert app.translator.gettext("Top up now") == "立即充值"  # the plugin's own catalogue
        assert app.translator.gettext("Sign in") == "登录 Acme"  # the operator rewords
        assert app.translator.gettext("Customer portal") == zh("Customer portal")  # engine's
    finally:
        current_locale.reset(token)
    page = Client(app).get("/", headers={"Accept-Language": "zh-CN"}).text
    assert "登录 Acme" in page


def test_render_plain_uses_the_given_locale(make_app, tmp_path):
    plain = tmp_path / "themes" / "mail" / "templates" / "plain.txt"
    plain.parent.mkdir(parents=True)
    plain.write_text(
        "{{ _('Sign out') }} | {{ fmt.money(1050, 'CNY') }} | {{ fmt.date(when) }} | {{ locale }}",
        encoding="utf-8",
    )
    app = make_app(theme="mail", theme_paths=[str(tmp_path / "themes")])
    when = datetime(2026, 7, 1, 23, 30, tzinfo=timezone.utc)
    assert (
        app.theme.render_plain("plain.txt", "en", "UTC", when=when)
        == "Sign out | CN¥10.50 | 1 Jul 2026 | en"
    )
    assert (
        app.theme.render_plain("plain.txt", "zh_Hans", "Asia/Shanghai", when=when)
        == f"{zh('Sign out')} | ¥10.50 | 2026年7月2日 | zh_Hans"
    )


# -- formatting -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "locale,amount,currency,expected",
    [
        ("en", 1050, "GBP", "£10.50"),
        ("zh_Hans", 1050, "GBP", "£10.50"),
        ("en", 1050, "CNY", "CN¥10.50"),
        ("zh_Hans", 1050, "CNY", "¥10.50"),
        ("en", -123456789, "GBP", "-£1,234,567.89"),
        ("en", 1050, "JPY", "JP¥1,050"),
        ("en", 1, "GBP", "£0.01"),
        ("en", 999999999999999, "GBP", "£9,999,999,999,999.99"),
    ],
)
def test_money_in_minor_units_per_locale(locale, amount, currency, expected):
    assert Formatter(locale, "UTC").money(amount, currency) == expected


def test_dates_per_locale_and_time_zone():
    late = datetime(2026, 7, 1, 23, 30, tzinfo=timezone.utc)
    assert Formatter("en", "Europe/London").date(late) == "2 Jul 2026"  # BST: already the 2nd
    assert Formatter("en", "UTC").date(late) == "1 Jul 2026"
    assert Formatter("zh_Hans", "Asia/Shanghai").date(late) == "2026年7月2日"
    assert Formatter("zh_Hans", "UTC").date(date(2026, 3, 5), "long") == "2026年3月5日"
    assert Formatter("en", "Europe/London").datetime(late, "short") == "02/07/2026, 00:30"
    assert Formatter("zh_Hans", "Asia/Shanghai").datetime(late, "short") == "2026/7/2 07:30"
    assert Formatter("en", "UTC").date(None) == ""


def test_quantities_per_locale():
    en, cn = Formatter("en", "UTC"), Formatter("zh_Hans", "UTC")
    assert en.quantity(1_500_000_000, "bytes") == "1.5 GB"
    assert en.quantity(999, "bytes") == "999 B"
    assert en.quantity(7500, "seconds") == "125 mins"
    assert cn.quantity(7500, "seconds") == "125分钟"
    assert en.quantity(12345, "messages") == "12,345"
    assert cn.quantity(500, "GBP") == "£5.00"
    assert en.percent(0.25) == "25%"


def test_unknown_time_zone_falls_back_to_utc():
    assert Formatter("en", "Mars/Olympus").tz.key == "UTC"
