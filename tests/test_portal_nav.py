"""The portal shell's markup for phones, without a browser (MOB-1, ACC-3, NOT-2).

The bottom bar's tabs (five: the primary sections first), the header's "More" for the rest,
and the dashboard's alerts folded behind "N more notices" are all decided on the server; the
browser suite (tests/browser/test_phone_layout.py) checks how they look and behave.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from engine import hookimpl
from engine.models import User
from engine.registry import Alert, Section
from engine.testing import Client, PrincipalHeader, as_user, seed_people

HTML = {"Accept": "text/html"}


class Shell(HTMLParser):
    """Each <nav>'s label and links [(section, hidden on phones, current)], and the alerts."""

    def __init__(self):
        super().__init__()
        self.navs: dict[str, list[tuple[str, bool, bool]]] = {}
        self.alerts: list[tuple[str, bool]] = []  # (alert id, folded on phones)
        self.toggles: list[str] = []  # the "N more notices" summaries
        self._nav: str | None = None
        self._extra = False
        self._summary: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "nav":
            self._nav = a.get("aria-label") or ""
            self.navs[self._nav] = []
        elif tag == "li" and self._nav is not None:
            self._extra = "tab-extra" in classes
        elif tag == "a" and self._nav is not None and a.get("data-section"):
            self.navs[self._nav].append(
                (a["data-section"], self._extra, a.get("aria-current") == "page")
            )
        elif tag == "div" and "alert" in classes and a.get("data-alert"):
            self.alerts.append((a["data-alert"], "alert-extra" in classes))
        elif tag == "summary" and self._nav is None:
            self._summary = []

    def handle_endtag(self, tag):
        if tag == "nav":
            self._nav = None
        elif tag == "summary" and self._summary is not None:
            self.toggles.append(" ".join("".join(self._summary).split()))
            self._summary = None

    def handle_data(self, data):
        if self._summary is not None:
            self._summary.append(data)


def shell_of(client, path="/", **headers) -> Shell:
    answer = client.get(path, headers={**HTML, **headers})
    assert answer.status_code == 200, answer.text[:300]
    parsed = Shell()
    parsed.feed(answer.text)
    return parsed


def alice(app) -> Client:
    seed_people(app)
    return as_user(Client(app), User.get(User.email == "alice@example.com"))


@pytest.mark.spec("MOB-1", "ACC-3")
def test_phones_get_five_tabs_primary_sections_first_and_the_rest_under_more(make_app):
    app = make_app(plugins=[("test-auth", PrincipalHeader())])
    shell = shell_of(alice(app))
    bar = shell.navs["Sections"]
    # Every section in the bar (wider screens show them all), in menu order.
    assert [s for s, _, _ in bar] == [
        "dashboard",
        "services",
        "usage",
        "topup",
        "billing",
        "account",
    ]
    # Phones: Billing and Account are tabs; Top-up (not primary) waits under "More".
    assert [s for s, extra, _ in bar if not extra] == [
        "dashboard",
        "services",
        "usage",
        "billing",
        "account",
    ]
    assert [s for s, _, _ in shell.navs["More sections"]] == ["topup"]
    assert [s for s, _, current in bar if current] == ["dashboard"]


@pytest.mark.spec("MOB-1", "ACC-3")
@pytest.mark.parametrize(
    "disabled,gone,tabs",
    [
        # Account off: its tab goes to Top-up, and nothing is left for "More".
        (["account"], "account", ["dashboard", "services", "usage", "topup", "billing"]),
        # Billing off (with the plugins that need it): four tabs, no "More".
        (["billing", "topups", "addons"], "billing", ["dashboard", "services", "usage", "account"]),
    ],
    ids=["account", "billing"],
)
def test_a_disabled_plugins_section_leaves_the_bar_and_frees_its_tab(
    make_app, disabled, gone, tabs
):
    app = make_app(plugins=[("test-auth", PrincipalHeader())], disabled=disabled)
    shell = shell_of(alice(app))
    bar = shell.navs["Sections"]
    assert gone not in [s for s, _, _ in bar]
    assert [s for s, extra, _ in bar if not extra] == tabs
    assert "More sections" not in shell.navs


@pytest.mark.spec("MOB-1", "ACC-3")
def test_a_partner_section_goes_under_more_unless_it_is_primary(make_app):
    class Weather:
        @hookimpl
        def register_sections(self, app):
            return [
                Section("weather", "Weather", "/weather", icon="sun", order=5),
                Section("radar", "Radar", "/radar", order=90, primary=True),
            ]

    app = make_app(plugins=[("test-auth", PrincipalHeader()), ("weather", Weather())])
    shell = shell_of(alice(app), "/account")
    tabs = [s for s, extra, _ in shell.navs["Sections"] if not extra]
    # Six primary sections for five tabs: the first five in menu order get one.
    assert tabs == ["dashboard", "services", "usage", "billing", "account"]
    assert [s for s, _, _ in shell.navs["More sections"]] == ["weather", "topup", "radar"]
    assert [s for s, _, current in shell.navs["Sections"] if current] == ["account"]


def test_a_visitor_signed_out_gets_no_sections_and_no_more(make_app):
    app = make_app(plugins=[("test-auth", PrincipalHeader())])
    shell = shell_of(Client(app), "/")
    assert shell.navs == {}


@pytest.mark.spec("MOB-1")
def test_the_more_menu_and_tabs_are_in_chinese(make_app):
    from engine.i18n import Translator

    zh = Translator().get("zh_Hans")
    app = make_app(plugins=[("test-auth", PrincipalHeader())])
    page = alice(app).get("/", headers={**HTML, "Accept-Language": "zh-CN"}).text
    assert 'aria-label="' + zh.gettext("More sections") + '"' in page
    assert zh.gettext("More sections") != "More sections"
    for title in ("Billing", "Account", "More"):
        assert "<span>" + zh.gettext(title) + "</span>" in page, title


class Alerts:
    @hookimpl
    def portal_alerts(self, app, ctx):
        return [
            Alert("promo", "info", "New bundles are here"),
            Alert("unpaid", "danger", "An invoice is overdue", "/billing", dismissible=False),
            Alert("low", "warning", "Your data is running low", "/usage"),
        ]


@pytest.mark.spec("MOB-1", "NOT-2")
def test_several_alerts_fold_into_the_most_important_and_n_more(make_app):
    app = make_app(plugins=[("test-auth", PrincipalHeader()), ("alerts", Alerts())])
    shell = shell_of(alice(app))
    # The most important first; on a phone the others wait behind "2 more notices".
    assert shell.alerts == [("unpaid", False), ("low", True), ("promo", True)]
    assert shell.toggles == ["2 more notices"]


@pytest.mark.spec("MOB-1", "NOT-2")
def test_a_single_alert_has_nothing_to_fold(make_app):
    class One:
        @hookimpl
        def portal_alerts(self, app, ctx):
            return [Alert("promo", "info", "New bundles are here")]

    app = make_app(plugins=[("test-auth", PrincipalHeader()), ("one", One())])
    shell = shell_of(alice(app))
    assert shell.alerts == [("promo", False)]
    assert shell.toggles == []
