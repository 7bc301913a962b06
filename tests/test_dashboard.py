"""The portal shell: dashboard cards and alerts from plugins, dismissal (DASH-1, NOT-2)."""

import re

import pytest
import time_machine

from engine import hookimpl
from engine.db import utcnow
from engine.models import AuditEvent, User
from engine.registry import Alert, Card
from engine.testing import Client, PrincipalHeader, as_user, sql_seen


class Contributions:
    @hookimpl
    def dashboard_cards(self, app, ctx):
        return [Card("weather", "Weather", "dashboard/_test_card.html", {"sky": "clear"}, order=5)]

    @hookimpl
    def portal_alerts(self, app, ctx):
        return [
            Alert("verify-email", "warning", "Verify your email", "/account", dismissible=False),
            Alert("promo-7", "info", "New bundles are here"),
        ]


@pytest.fixture
def dapp(make_app, tmp_path):
    from engine.testing import seed_people

    theme = tmp_path / "themes" / "t" / "templates" / "dashboard"
    theme.mkdir(parents=True)
    (theme / "_test_card.html").write_text("<p class='sky'>{{ card.data.sky }}</p>")
    app = make_app(
        plugins=[("test-auth", PrincipalHeader()), ("extras", Contributions())],
        theme="t",
        theme_paths=[str(tmp_path / "themes")],
    )
    seed_people(app)
    return app


@pytest.mark.spec("DASH-1", "NOT-2")
def test_cards_and_alerts_come_from_plugins(dapp):
    client = as_user(Client(dapp), User.get(User.email == "alice@example.com"))
    body = client.get("/api/v1/dashboard").json
    assert [c["id"] for c in body["cards"]][:1] == ["weather"]
    assert {a["id"] for a in body["alerts"]} >= {"verify-email", "promo-7"}
    page = client.get("/", headers={"Accept": "text/html"})
    assert "<p class='sky'>clear</p>" in page.text and "Verify your email" in page.text


@pytest.mark.spec("NOT-2")
def test_dismissible_alerts_can_be_dismissed_per_user_others_cannot(dapp):
    alice = as_user(Client(dapp), User.get(User.email == "alice@example.com"))
    bob = as_user(Client(dapp), User.get(User.email == "bob@example.com"))
    assert alice.post("/api/v1/alerts/promo-7/dismiss").status_code == 204
    assert alice.post("/api/v1/alerts/verify-email/dismiss").status_code == 404
    assert alice.post("/api/v1/alerts/no-such/dismiss").status_code == 404
    ids = {a["id"] for a in alice.get("/api/v1/alerts").json["items"]}
    assert "promo-7" not in ids and "verify-email" in ids
    assert "promo-7" in {a["id"] for a in bob.get("/api/v1/alerts").json["items"]}
    assert AuditEvent.select().where(AuditEvent.action == "alert.dismissed").count() == 1


def test_dismiss_form_on_the_dashboard(dapp):
    alice = as_user(Client(dapp), User.get(User.email == "alice@example.com"))
    page = alice.get("/", headers={"Accept": "text/html"})
    assert 'action="/alerts/promo-7/dismiss"' in page.text
    assert 'action="/alerts/verify-email/dismiss"' not in page.text
    done = alice.post("/alerts/promo-7/dismiss", form={})
    assert done.status_code == 303
    assert "New bundles are here" not in alice.get("/", headers={"Accept": "text/html"}).text


class Counting:
    """A card that counts how often the dashboard was built."""

    builds = 0

    @hookimpl
    def dashboard_cards(self, app, ctx):
        Counting.builds += 1
        return [
            Card(
                "count",
                "Count",
                "dashboard/_test_card.html",
                {"sky": str(Counting.builds)},
                order=1,
            )
        ]


@pytest.fixture
def counted(make_app, tmp_path):
    def build(**settings):
        from engine.testing import seed_people

        theme = tmp_path / "themes" / "t" / "templates" / "dashboard"
        theme.mkdir(parents=True, exist_ok=True)
        (theme / "_test_card.html").write_text("<p class='sky'>{{ card.data.sky }}</p>")
        app = make_app(
            plugins=[("test-auth", PrincipalHeader()), ("count", Counting())],
            theme="t",
            theme_paths=[str(tmp_path / "themes")],
            **settings,
        )
        seed_people(app)
        Counting.builds = 0
        return app

    return build


@pytest.mark.spec("DASH-1")
def test_the_dashboard_is_kept_until_the_customer_has_an_audited_change(counted):
    from engine import audit

    app = counted()
    alice_user = User.get(User.email == "alice@example.com")
    alice = as_user(Client(app), alice_user)
    assert alice.get("/api/v1/dashboard").json["cards"][0]["data"] == {"sky": "1"}
    assert alice.get("/api/v1/dashboard").json["cards"][0]["data"] == {"sky": "1"}
    assert "<p class='sky'>1</p>" in alice.get("/", headers={"Accept": "text/html"}).text
    assert Counting.builds == 1  # the API and the page share one cached dashboard

    bob_user = User.get(User.email == "bob@example.com")
    audit.record_system(app, "elsewhere", customer_id=bob_user.contact.customer_id)
    alice.get("/api/v1/dashboard")
    assert Counting.builds == 1  # another customer's change leaves alice's dashboard alone

    # Any audited change of alice's customer, written by any worker or job, refreshes it.
    audit.record_system(app, "topup.credited", customer_id=alice_user.contact.customer_id)
    assert alice.get("/api/v1/dashboard").json["cards"][0]["data"] == {"sky": "2"}
    assert Counting.builds == 2


def test_unaudited_changes_show_within_cache_seconds(counted):
    app = counted(dashboard={"cache_seconds": 30})
    alice = as_user(Client(app), User.get(User.email == "alice@example.com"))
    with time_machine.travel(utcnow(), tick=False) as clock:
        alice.get("/api/v1/dashboard")
        clock.shift(29)
        alice.get("/api/v1/dashboard")
        assert Counting.builds == 1
        clock.shift(2)  # e.g. usage rated from the network: no audit event, so the clock decides
        alice.get("/api/v1/dashboard")
        assert Counting.builds == 2


def test_each_viewer_and_language_has_its_own_dashboard(counted):
    app = counted()
    alice = as_user(Client(app), User.get(User.email == "alice@example.com"))
    bob = as_user(Client(app), User.get(User.email == "bob@example.com"))
    alice.get("/api/v1/dashboard")
    bob.get("/api/v1/dashboard")
    alice.get("/api/v1/dashboard", headers={"Accept-Language": "zh-Hans"})
    assert Counting.builds == 3


def test_cache_seconds_zero_turns_the_cache_off(counted):
    app = counted(dashboard={"cache_seconds": 0})
    alice = as_user(Client(app), User.get(User.email == "alice@example.com"))
    alice.get("/api/v1/dashboard")
    alice.get("/api/v1/dashboard")
    assert Counting.builds == 2


def test_a_kept_dashboard_page_carries_each_visitors_own_csrf_token(counted):
    app = counted()
    user = User.get(User.email == "alice@example.com")
    phone, laptop = as_user(Client(app), user), as_user(Client(app), user)
    pages = [c.get("/", headers={"Accept": "text/html"}).text for c in (phone, laptop)]
    assert Counting.builds == 1  # one dashboard for both visits
    for client, page in zip((phone, laptop), pages):
        assert f'name="csrf_token" value="{client.csrf_token()}"' in page
    assert phone.csrf_token() != laptop.csrf_token()
    assert "csrf-" not in pages[0].replace(phone.csrf_token(), "")  # no stand-in left over
    # the token in a kept page is accepted: the language switch posted from it goes through
    token = re.search(r'name="csrf_token" value="([^"]+)"', pages[1])[1]
    switched = laptop.post(
        "/lang", form={"lang": "zh_Hans", "next": "/", "csrf_token": token}, csrf=False
    )
    assert switched.status_code == 303


def test_a_signed_in_customers_latest_change_comes_with_the_session(counted):
    """With a real session the freshness stamp is read in the session's own query."""
    from engine import audit
    from engine.testing import DEMO_PASSWORD

    app = counted()
    client = Client(app)
    client.login("alice@example.com", DEMO_PASSWORD)
    client.get("/api/v1/dashboard")
    with sql_seen() as queries:
        client.get("/api/v1/dashboard")
    assert len(queries) == 1 and Counting.builds == 1, queries
    user = User.get(User.email == "alice@example.com")
    audit.record_system(app, "service.renewed", customer_id=user.contact.customer_id)
    client.get("/api/v1/dashboard")
    assert Counting.builds == 2


@pytest.mark.spec("DASH-1")
def test_navigation_follows_who_is_signed_in_on_the_welcome_and_error_pages(dapp):
    html = {"Accept": "text/html"}
    welcome = Client(dapp).get("/", headers=html)
    assert welcome.status_code == 200 and 'class="sections"' not in welcome.text
    assert 'href="/login"' in welcome.text
    alice = as_user(Client(dapp), User.get(User.email == "alice@example.com"))
    missing = alice.get("/no-such-page", headers=html)
    assert missing.status_code == 404
    assert "Sign out" in missing.text and ">Sign in<" not in missing.text
    assert 'class="sections"' in missing.text
    stranger = Client(dapp).get("/no-such-page", headers=html)
    assert stranger.status_code == 404 and "Sign in" in stranger.text
    assert 'class="sections"' not in stranger.text


#: Queries of one dashboard API request for the demo's alice with every built-in plugin: the
#: session (with the freshness stamp) and each plugin's cards and alerts. A new query here is
#: a cost on every uncached visit: raise the number only for something the page shows.
DASHBOARD_QUERIES = 24


@pytest.mark.spec("DASH-1")
@pytest.mark.parametrize("cached", [False, True], ids=["built", "cached"])
def test_the_dashboard_api_runs_a_known_number_of_queries(make_app, cached):
    from engine.demo import seed_demo
    from engine.testing import DEMO_PASSWORD

    app = make_app(dashboard={"cache_seconds": 60 if cached else 0})
    seed_demo(app)
    client = Client(app)
    client.login("alice@example.com", DEMO_PASSWORD)
    first = client.get("/api/v1/dashboard").json
    assert {c["id"] for c in first["cards"]} >= {"services", "balances", "billing", "activity"}
    with sql_seen() as queries:
        again = client.get("/api/v1/dashboard")
    assert again.status_code == 200 and again.json == first
    # Cached: the session's own query, which also reads the customer's newest change.
    expected = 1 if cached else DASHBOARD_QUERIES
    assert len(queries) == expected, "\n".join(q[:160] for q in queries)
    # No statement twice: what two plugins' cards and alerts share is read once per request
    # (the notification thresholds are read per balance type, through the usage hook).
    repeated = [q for q in set(queries) if queries.count(q) > 1 and "notification_pref" not in q]
    assert not repeated, repeated
