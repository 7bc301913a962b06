"""Support and limits (SUP-1, SUP-2, LIM-1): how to reach support, the ID to quote, staff-only work."""

import falcon
import pytest

from engine import hookimpl
from engine.models import Contact, Customer, User
from engine.registry import Route
from engine.security import hash_password
from engine.settings import SettingsError, load_settings
from engine.testing import DEMO_PASSWORD, TEST_SETTINGS, Client
from identity_support import core_demo, signed_in  # noqa: F401

SUPPORT = {
    "phone": "+44 161 496 0000",
    "email": "help@acme.example",
    "chat_url": "https://chat.acme.example/",
    "hours": {"mon": "08:00-20:00", "sat": "09:00-12:00, 13:00-17:00", "sun": "closed"},
    "articles": [
        {"title": "Roaming abroad", "url": "https://help.acme.example/roaming"},
        {"title": "Your first bill", "url": "/help/first-bill"},
    ],
}


class Failing:
    """Pages that fail on purpose: a 403 and a 500 a customer may land on."""

    auth = "public"

    def on_get(self, req, resp, how):
        if how == "forbidden":
            raise falcon.HTTPForbidden(title="Forbidden")
        raise RuntimeError("fails on purpose")


class FailingPlugin:
    @hookimpl
    def register_routes(self, app):
        return [Route("/failing/{how}", Failing())]


@pytest.fixture
def support_app(make_app):
    from engine.core.demo import seed

    app = make_app(plugins=[("failing", FailingPlugin())], support=SUPPORT)
    seed(app, {})
    return app


@pytest.mark.spec("SUP-1", "LIM-1")
def test_support_page_shows_contacts_customer_id_and_staff_only_operations(support_app):
    page = signed_in(support_app, "bob@example.com").get("/support").text
    assert 'href="tel:+441614960000"' in page and 'href="mailto:help@acme.example"' in page
    assert 'href="https://chat.acme.example/"' in page
    assert "C-100002" in page
    for op in (
        "customer_type",
        "move_services",
        "cancel_services",
        "disputes",
        "refunds",
        "primary_contact",
        "configuration",
    ):
        assert f'data-op="{op}"' in page
    anonymous = Client(support_app).get("/support")
    assert anonymous.status_code == 200 and "C-100002" not in anonymous.text


@pytest.mark.spec("SUP-1")
def test_support_page_lists_opening_hours_by_weekday_and_help_articles(support_app):
    page = signed_in(support_app, "bob@example.com").get("/support").text
    assert '<tr data-day="mon"><th scope="row">Monday</th><td>08:00-20:00</td></tr>' in page
    assert "09:00-12:00, 13:00-17:00" in page and "Closed" in page
    assert 'data-day="tue"' not in page  # days the operator left out are not shown
    assert '<a href="https://help.acme.example/roaming" rel="noopener">Roaming abroad</a>' in page
    assert '<a href="/help/first-bill">Your first bill</a>' in page
    chinese = Client(support_app, headers={"Accept-Language": "zh-CN"}).get("/support").text
    assert "星期一" in chinese and "休息" in chinese


@pytest.mark.spec("SUP-1", "LIM-1")
def test_support_api(support_app):
    body = signed_in(support_app, "alice@example.com").get("/api/v1/support").json
    assert body["customer_number"] == "C-100001" and body["configured"] is True
    assert body["phone"] == "+44 161 496 0000" and body["tel"] == "tel:+441614960000"
    assert body["email"] == "help@acme.example" and body["chat_url"] == SUPPORT["chat_url"]
    assert body["hours"] == ""
    assert body["opening_hours"][0] == {"day": "mon", "label": "Monday", "hours": "08:00-20:00"}
    assert [row["day"] for row in body["opening_hours"]] == ["mon", "sat", "sun"]
    assert body["articles"] == SUPPORT["articles"]
    assert {"refunds", "disputes", "customer_type"} <= {op["id"] for op in body["staff_only"]}
    anonymous = Client(support_app).get("/api/v1/support").json
    assert anonymous["customer_number"] is None and anonymous["tel"] == "tel:+441614960000"


@pytest.mark.spec("SUP-1")
def test_unconfigured_support_says_so_and_shows_no_made_up_contacts(core_demo):
    """Production defaults are empty: no demo number reaches a real portal."""
    alice = signed_in(core_demo, "alice@example.com")
    page = alice.get("/support").text
    assert "data-support-unset" in page and 'href="tel:' not in page and "mailto:" not in page
    assert "C-100001" in page  # the ID to quote is there all the same
    body = alice.get("/api/v1/support").json
    assert body["configured"] is False and body["phone"] == body["tel"] == body["email"] == ""
    assert body["articles"] == [] and body["opening_hours"] == []
    footer = alice.get("/account").text.split('<footer class="footer">')[1]
    assert 'href="/support"' in footer and 'href="tel:' not in footer


@pytest.mark.spec("SUP-1", "MOB-1")
def test_every_page_footer_links_support_with_tap_to_call(support_app):
    alice = signed_in(support_app, "alice@example.com")
    for client, path in ((alice, "/"), (alice, "/account"), (alice, "/account/activity")) + (
        (Client(support_app), "/login"),
        (Client(support_app), "/support"),
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        footer = page.text.split('<footer class="footer">')[1]
        assert 'href="tel:+441614960000"' in footer and 'href="/support"' in footer, path
        assert 'href="mailto:help@acme.example"' in footer, path
    assert "C-100001" in alice.get("/account").text.split('<footer class="footer">')[1]


@pytest.mark.spec("SUP-1")
@pytest.mark.parametrize(
    ("path", "status"),
    [("/no-such-page", 404), ("/failing/forbidden", 403), ("/failing/crash", 500)],
)
def test_error_pages_show_how_to_reach_support_and_the_customer_id(support_app, path, status):
    alice = signed_in(support_app, "alice@example.com")
    page = alice.get(path, headers={"Accept": "text/html"})
    assert page.status_code == status
    help_section = page.text.split('aria-labelledby="error-help-title"')[1].split("</section>")[0]
    assert 'href="tel:+441614960000"' in help_section and "mailto:help@acme.example" in help_section
    assert "C-100001" in help_section and "Monday" in help_section
    anonymous = Client(support_app).get(path, headers={"Accept": "text/html"})
    assert anonymous.status_code == status
    assert (
        'href="tel:+441614960000"' in anonymous.text
        and "data-customer-number" not in anonymous.text
    )


def _load(tmp_path, demo=False, **support):
    overrides = {**TEST_SETTINGS, "data_dir": str(tmp_path), "secret_key": "k" * 32}
    return load_settings(
        None, environ={}, overrides={**overrides, "demo": demo, "support": support}
    )


@pytest.mark.spec("SUP-1")
@pytest.mark.parametrize(
    ("support", "message"),
    [
        ({"phone": "020 7946 0000"}, "support.phone: '020 7946 0000' is not a phone number"),
        ({"phone": "+44 12"}, "support.phone: '+44 12' is not a phone number"),
        ({"email": "help@"}, "support.email: 'help@' is not an email address"),
        ({"chat_url": "javascript:alert(1)"}, "support.chat_url: 'javascript:alert(1)' is not"),
        ({"chat_url": "/chat"}, "support.chat_url: '/chat' is not an https:// URL"),
        ({"chat_url": "http://chat.example"}, "must be an https:// URL outside demo mode"),
        ({"hours": {"monday": "08:00-20:00"}}, "support.hours.monday: not a weekday"),
        ({"hours": {"mon": "8am-8pm"}}, 'support.hours.mon: "closed", or time ranges'),
        ({"hours": {"mon": "08:00-25:00"}}, 'support.hours.mon: "closed", or time ranges'),
        ({"hours": "x" * 201}, "support.hours: at most 200 characters"),
        ({"articles": [{"title": "Help"}]}, "support.articles.0.url"),
        ({"articles": [{"title": "", "url": "/h"}]}, "support.articles.0.title"),
        ({"articles": [{"title": "Bad", "url": "//evil.example/x"}]}, "is not an https:// URL"),
        (
            {"articles": [{"title": "Old", "url": "http://help.example/x"}]},
            "support.articles.0.url: 'http://help.example/x' must be an https:// URL",
        ),
    ],
)
def test_support_settings_are_validated_naming_the_key(tmp_path, support, message):
    with pytest.raises(SettingsError) as refused:
        _load(tmp_path, **support)
    assert message in str(refused.value)


@pytest.mark.spec("SUP-1")
def test_support_settings_accept_free_text_hours_and_demo_mode_fills_what_is_unset(tmp_path):
    plain = _load(tmp_path, hours="Every day, 8am to 8pm", phone="+86 10 1234 5678")
    assert plain.support.hours == "Every day, 8am to 8pm" and plain.support.email == ""
    assert plain.support.articles == [] and plain.support.chat_url == ""
    demo = _load(tmp_path, demo=True, phone="+86 10 1234 5678", chat_url="http://127.0.0.1/chat")
    assert demo.support.phone == "+86 10 1234 5678"  # the operator's own value wins
    assert demo.support.chat_url == "http://127.0.0.1/chat"  # http is fine in demo mode
    assert demo.support.email and demo.support.articles and demo.support.hours["mon"]
    from_env = load_settings(
        None,
        environ={
            "PORTICO_SUPPORT_PHONE": "+44 20 7946 0000",
            "PORTICO_SUPPORT_ARTICLES": '[{"title": "Roaming", "url": "/help/roaming"}]',
        },
        overrides={**TEST_SETTINGS, "data_dir": str(tmp_path), "secret_key": "k" * 32},
    )
    assert from_env.support.articles == [{"title": "Roaming", "url": "/help/roaming"}]


@pytest.mark.spec("SUP-1")
def test_emails_say_only_what_support_has_set(support_app, make_app):
    template = support_app.theme.env.get_template("email/_questions.txt")
    both = {"phone": "+44 161 496 0000", "email": "help@acme.example"}
    assert template.render(support=both) == (
        "Questions? Call +44 161 496 0000 or email help@acme.example."
    )
    assert template.render(support={**both, "phone": ""}) == "Questions? Email help@acme.example."
    assert template.render(support={"phone": "", "email": ""}) == ""


@pytest.mark.spec("SUP-2", "LIM-2")
def test_a_person_with_two_customer_accounts_sees_each_separately(core_demo):
    second = Customer.create(number="C-200001", name="Alice's Bakery", kind="business")
    contact = Contact.create(customer=second, first_name="Alice", email="alice@bakery.example")
    User.create(
        contact=contact, email="alice@bakery.example", password_hash=hash_password(DEMO_PASSWORD)
    )
    home = signed_in(core_demo, "alice@example.com").get("/api/v1/account").json
    shop = signed_in(core_demo, "alice@bakery.example").get("/api/v1/account").json
    assert home["customer"]["number"] == "C-100001" and shop["customer"]["number"] == "C-200001"
    assert home["customer"]["kind"] == "individual" and shop["customer"]["kind"] == "business"
