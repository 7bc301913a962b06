"""The activity log as the customer reads it (ACCT-5): sentences in the customer's language,
devices by name, newest first, paged, filtered by kind; what a role may read (ACCT-7)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.audit import record
from engine.context import Context, Principal
from engine.devices import device_name
from engine.i18n import Translator, current_locale
from engine.models import AuditEvent, User
from engine.testing import problem
from identity_support import core_demo, signed_in, user  # noqa: F401
from plugins.account.activity import GENERAL, GROUPS, KINDS, SENTENCES

ACTIVITY, PAGE = "/api/v1/account/activity", "/account/activity"

IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
WINDOWS_EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0"
)
LINUX_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0"


def act(app, who: User, action: str, data: dict | None = None, user_agent: str = "") -> None:
    """One event in ``who``'s account, as if they made the change from ``user_agent``."""
    ctx = Context(
        app=app,
        principal=Principal(
            kind="customer",
            user_id=who.id,
            customer_id=who.contact.customer_id,
            contact_id=who.contact_id,
        ),
        ip="203.0.113.9",
        user_agent=user_agent,
    )
    record(ctx, action, f"user:{who.id}", data or {})


def items(client, query: str = "") -> list[dict]:
    answer = client.get(ACTIVITY + query)
    assert answer.status_code == 200, answer.text
    return answer.json["items"]


def said(client, action: str) -> str:
    return next(e["description"] for e in items(client, "?limit=200") if e["action"] == action)


@pytest.mark.spec("ACCT-5")
@pytest.mark.parametrize(
    "user_agent, english, chinese",
    [
        (IPHONE_SAFARI, "Safari on iPhone", "iPhone 上的 Safari"),
        (ANDROID_CHROME, "Chrome on Android", "Android 上的 Chrome"),
        (WINDOWS_EDGE, "Edge on Windows", "Windows 上的 Edge"),
        (LINUX_FIREFOX, "Firefox on Linux", "Linux 上的 Firefox"),
        ("", "Unknown device", "未知设备"),
        ("\x7f?? not a browser ??", "Unknown device", "未知设备"),
        ("system", "Automatic (no device)", "自动（无设备）"),
    ],
)
def test_ACCT5_devices_are_named_from_real_user_agents(user_agent, english, chinese):
    translator = Translator()
    for locale, expected in (("en", english), ("zh_Hans", chinese)):
        token = current_locale.set(locale)
        try:
            assert device_name(user_agent, translator.gettext) == expected
        finally:
            current_locale.reset(token)


ROOT = Path(__file__).resolve().parent.parent
#: Actions written only for staff and the operator: no customer's log holds them.
NOT_FOR_CUSTOMERS = (
    "staff.",
    "service_token.",
    "operator.",
    "retention.",
    "usage.batch_rated",
    "usage.imported",
)
CALL = re.compile(r"\brecord(?:_system)?\(\s*[\w.]+,\s*\"([a-z0-9_.]+)\"")


def written_actions() -> set[str]:
    """Every audit action named literally where it is written (engine and plugins)."""
    found = set()
    for path in [*ROOT.glob("engine/**/*.py"), *ROOT.glob("plugins/**/*.py")]:
        found |= set(CALL.findall(path.read_text()))
    return {a for a in found if not a.endswith("_")}  # "topup.auto_" + "on": both listed


@pytest.mark.spec("ACCT-5")
def test_ACCT5_every_action_a_customer_can_see_has_a_sentence_and_a_kind():
    written = written_actions()
    assert {"login", "password.changed", "payment.succeeded", "addon.ordered"} <= written
    missing = sorted(
        a for a in written if a not in SENTENCES and not a.startswith(NOT_FOR_CUSTOMERS)
    )
    assert not missing, f"add a sentence to plugins/account/activity.py for: {missing}"
    assert all(action.split(".")[0] in GROUPS for action in SENTENCES)
    assert set(GROUPS.values()) == set(KINDS)


@pytest.mark.spec("ACCT-5")
def test_ACCT5_every_sentence_kind_and_device_word_is_translated():
    translator = Translator()
    texts = [*KINDS.values(), *GENERAL.values()]
    for found in SENTENCES.values():
        texts += [found] if isinstance(found, str) else list(found)
    token = current_locale.set("zh_Hans")
    try:
        untranslated = [t for t in texts if translator.get("zh_Hans").gettext(t) == t]
    finally:
        current_locale.reset(token)
    assert not untranslated


@pytest.mark.spec("ACCT-5")
def test_ACCT5_entries_are_sentences_in_the_customers_language(core_demo):
    alice = signed_in(core_demo, "alice@example.com", **{"User-Agent": ANDROID_CHROME})
    me = user("alice@example.com")
    act(core_demo, me, "password.changed", user_agent=LINUX_FIREFOX)
    act(core_demo, me, "api_key.created", {"name": "Sheet", "access": "read"})
    act(core_demo, me, "payment.succeeded", {"amount": 1050, "currency": "GBP"}, "system")
    act(core_demo, me, "service.frobnicated")  # a plugin's action with no sentence yet
    act(core_demo, me, "mystery")  # an action of no known kind

    english = {
        "login": "Signed in from Chrome on Android",
        "password.changed": "Password changed",
        "api_key.created": "API key “Sheet” generated",
        "payment.succeeded": "Payment of £10.50 received",
        "service.frobnicated": "A service changed",
        "mystery": "Account activity",
    }
    for action, sentence in english.items():
        assert said(alice, action) == sentence
    log = {e["action"]: e for e in items(alice)}
    assert log["password.changed"]["device"] == "Firefox on Linux"
    assert log["password.changed"]["kind"] == "security"
    assert log["payment.succeeded"]["device"] is None  # no request behind it: no device
    page = alice.get(PAGE).text
    for sentence in ("Signed in from Chrome on Android", "Firefox on Linux", "£10.50"):
        assert sentence in page
    # Never a raw id or a raw User-Agent on the page.
    assert "Chrome/126" not in page and "Gecko/" not in page and ">mystery<" not in page

    assert alice.patch("/api/v1/account", json={"locale": "zh_Hans"}).status_code == 200
    chinese = {
        "login": "从 Android 上的 Chrome 登录",
        "password.changed": "密码已更改",
        "api_key.created": "已生成 API 密钥“Sheet”",
        "payment.succeeded": "已收到付款 £10.50",
        "service.frobnicated": "服务已变更",
        "mystery": "账户动态",
        "account.updated": "账户信息已更改",
    }
    for action, sentence in chinese.items():
        assert said(alice, action) == sentence
    page = alice.get(PAGE).text
    assert "从 Android 上的 Chrome 登录" in page and "Linux 上的 Firefox" in page
    assert "Signed in" not in page


@pytest.mark.spec("ACCT-5")
def test_ACCT5_the_log_is_paged_newest_first_in_the_page_and_the_api(core_demo):
    alice = signed_in(core_demo, "alice@example.com")
    me = user("alice@example.com")
    for n in range(121):
        act(core_demo, me, "account.updated", {"n": n})
    total = AuditEvent.select().where(AuditEvent.customer == me.contact.customer_id).count()
    assert total == 122  # and the sign-in

    first = alice.get(ACTIVITY).json
    assert len(first["items"]) == 50 and first["next"]
    seen, cursor = [e["id"] for e in first["items"]], first["next"]
    while cursor:
        more = alice.get(ACTIVITY, params={"cursor": cursor}).json
        seen += [e["id"] for e in more["items"]]
        cursor = more["next"]
    assert len(seen) == 122 == len(set(seen)) and seen == sorted(seen, reverse=True)

    page = alice.get(PAGE)
    assert page.status_code == 200 and page.text.count('class="activity-item') == 50
    older = re.search(r'href="(/account/activity\?cursor=[^"]+)"', page.text)
    assert older and "Newest" not in page.text
    second = alice.get(older.group(1).replace("&amp;", "&"))
    assert second.text.count('class="activity-item') == 50 and "Newest" in second.text


@pytest.mark.spec("ACCT-5")
def test_ACCT5_the_log_is_filtered_by_kind_across_pages(core_demo):
    alice = signed_in(core_demo, "alice@example.com")
    me = user("alice@example.com")
    for n in range(55):
        act(core_demo, me, "payment.succeeded", {"amount": 100 + n, "currency": "GBP"}, "system")
        act(core_demo, me, "service.renewed", {}, "system")
    act(core_demo, me, "payment_method.added", {"label": "Visa •••• 4242"})

    payments = alice.get(ACTIVITY, params={"kind": "payments"}).json
    assert len(payments["items"]) == 50 and {e["kind"] for e in payments["items"]} == {"payments"}
    assert payments["items"][0]["description"] == "Card Visa •••• 4242 saved"
    rest = alice.get(ACTIVITY, params={"kind": "payments", "cursor": payments["next"]}).json
    assert len(rest["items"]) == 6 and rest["next"] is None
    assert [e["action"] for e in items(alice, "?kind=signins")] == ["login"]
    assert {e["action"] for e in items(alice, "?kind=services")} == {"service.renewed"}
    assert items(alice, "?kind=account") == []

    page = alice.get(PAGE, params={"kind": "payments"})
    assert page.status_code == 200 and 'data-kind="services"' not in page.text
    assert page.text.count('data-kind="payments"') == 50
    assert re.search(r'href="/account/activity\?cursor=[^"]+&amp;kind=payments"', page.text)
    assert 'href="/account/activity?kind=payments" aria-current="page"' in page.text
    empty = alice.get(PAGE, params={"kind": "account"})
    assert "Nothing of this kind yet." in empty.text


@pytest.mark.spec("ACCT-5")
@pytest.mark.parametrize("kind", ["logins", "PAYMENTS", "payments'--", "x" * 300])
def test_ACCT5_an_unknown_kind_is_refused(core_demo, kind):
    alice = signed_in(core_demo, "alice@example.com")
    answer = alice.get(ACTIVITY, params={"kind": kind})
    assert answer.status_code == 422 and "kind" in problem(answer)["errors"]
    page = alice.get(PAGE, params={"kind": kind})
    assert page.status_code == 422 and 'role="alert"' in page.text
    assert 'class="activity-item' not in page.text


@pytest.mark.spec("ACCT-5", "ACCT-7")
def test_ACCT5_another_customers_events_are_never_shown_and_members_see_their_own(core_demo):
    bob, carol = user("bob@example.com"), user("carol@example.com")
    alice_client = signed_in(core_demo, "alice@example.com")
    act(core_demo, bob, "payment.succeeded", {"amount": 999, "currency": "GBP"})
    act(core_demo, carol, "password.changed")
    act(core_demo, bob, "password.changed")
    alice_id = user("alice@example.com").id
    for kind in ("", "?kind=payments", "?kind=security"):
        assert all(
            AuditEvent.get_by_id(e["id"]).user_id == alice_id for e in items(alice_client, kind)
        )
    assert "£9.99" not in alice_client.get(PAGE, params={"kind": "payments"}).text

    # Carol, a member of Bob's account, reads only what she did; Bob, the primary, all of it.
    carol_client = signed_in(core_demo, "carol@example.com")
    security = items(carol_client, "?kind=security")
    assert [e["actor"] for e in security] == ["You"]
    assert items(carol_client, "?kind=payments") == []
    bobs = items(signed_in(core_demo, "bob@example.com"), "?kind=security")
    assert {e["actor"] for e in bobs} == {"You", "carol@example.com"}
