"""Notifications: preferences, routing, digests, expiry warnings, delivery through real SMTP."""

from datetime import timedelta

import pytest
import time_machine

from engine import hookimpl
from engine.db import utcnow
from engine.models import Product, Service, User
from engine.notify import Notice, notify, notify_customer
from engine.testing import PrincipalHeader, as_user, problem, run_tasks
from plugins.email.models import EmailDelivery
from plugins.notifications import tasks as note_tasks
from plugins.notifications.models import DigestItem
from tests.mailserver import body_text, smtp  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("smtp")


@pytest.fixture
def napp(make_app, smtp):
    from engine.testing import seed_people

    app = make_app(plugins=[("test-auth", PrincipalHeader())], **smtp.settings())
    app.demo = seed_people(app)
    return app


def alice(app) -> User:
    return User.get(User.email == "alice@example.com")


def mobile_service(app, customer, **fields) -> Service:
    product = Product.get_or_create(code="mob-30", defaults={"name": "Mobile 30"})[0]
    values = {
        "customer": customer,
        "product": product,
        "name": "Test line 42",
        "status": "active",
        **fields,
    }
    return Service.create(**values)


@pytest.mark.spec("NOT-1")
def test_expiry_warnings_go_out_7_3_and_1_days_before_each_once(napp, smtp):
    customer = napp.demo["customers"]["alice"]
    start = utcnow()
    service = mobile_service(
        napp, customer, expires_at=start + timedelta(days=7, hours=12), auto_renew=False
    )
    for days_before in (8, 6.9, 6.5, 2.9, 2.5, 0.9, 0.5):
        with time_machine.travel(service.expires_at - timedelta(days=days_before), tick=False):
            note_tasks.warn_expiring_services(napp)
    run_tasks(napp)
    mine = [s for s in smtp.inbox.subjects("alice@example.com") if s.startswith("Test line 42")]
    assert sorted(mine) == [
        "Test line 42 ends in 3 days",
        "Test line 42 ends in 7 days",
        "Test line 42 ends tomorrow",
    ]


@pytest.mark.spec("NOT-1")
def test_auto_renewing_services_get_no_expiry_warning(napp, smtp):
    customer = napp.demo["customers"]["alice"]
    service = mobile_service(
        napp, customer, renews_at=utcnow() + timedelta(days=2), auto_renew=True
    )
    note_tasks.warn_expiring_services(napp)
    assert (
        not EmailDelivery.select()
        .where(EmailDelivery.key.startswith(f"expiry:{service.id}:"))
        .exists()
    )


@pytest.mark.spec("NOT-3")
def test_preferences_default_and_round_trip(napp):
    client = as_user(napp_client(napp), alice(napp))
    got = client.get("/api/v1/account/notification-preferences").json
    assert got["frequency"] == "immediate"
    assert got["channels"]["billing"] == ["email"] and got["channels"]["security"] == ["email"]
    assert got["thresholds"]["data"] == 10
    new = {
        "frequency": "digest",
        "channels": {"billing": ["email"], "usage": [], "service": ["email"], "account": ["email"]},
        "thresholds": {"data": 20, "voice": 15, "sms": 5, "monetary": 300},
    }
    saved = client.put("/api/v1/account/notification-preferences", json=new)
    assert saved.status_code == 200, saved.text
    again = client.get("/api/v1/account/notification-preferences").json
    assert again["frequency"] == "digest" and again["thresholds"]["data"] == 20
    assert again["channels"]["usage"] == []


@pytest.mark.spec("NOT-3")
def test_invalid_preferences_are_refused_field_by_field_and_nothing_is_saved(napp):
    client = as_user(napp_client(napp), alice(napp))
    bad = {
        "frequency": "hourly",
        "channels": {"billing": ["pigeon"]},
        "thresholds": {"data": 0, "voice": 10, "sms": 10, "monetary": -1},
    }
    body = problem(client.put("/api/v1/account/notification-preferences", json=bad))
    assert body["status"] == 422
    assert "frequency" in body["errors"] and "thresholds" in body["errors"]
    assert set(body["errors"]["thresholds"]) == {"data", "monetary"}
    ok_shape_bad_channel = {
        "frequency": "immediate",
        "channels": {"billing": ["pigeon"]},
        "thresholds": {"data": 10, "voice": 10, "sms": 10, "monetary": 0},
    }
    body = problem(
        client.put("/api/v1/account/notification-preferences", json=ok_shape_bad_channel)
    )
    assert "pigeon" in str(body["errors"]["channels"])
    assert client.get("/api/v1/account/notification-preferences").json["frequency"] == "immediate"


@pytest.mark.spec("NOT-3")
def test_a_category_switched_off_sends_nothing_but_security_always_goes(napp, smtp):
    user = alice(napp)
    client = as_user(napp_client(napp), user)
    client.put(
        "/api/v1/account/notification-preferences",
        json={
            "frequency": "immediate",
            "channels": {"billing": [], "usage": [], "service": [], "account": []},
            "thresholds": {"data": 10, "voice": 10, "sms": 10, "monetary": 500},
        },
    )
    with napp.database.atomic():
        notify_customer(
            napp,
            user.contact.customer_id,
            "service_expiring",
            "k-1",
            "service",
            {"service": "Mobile", "service_id": 1, "days": 3, "ends_at": utcnow().isoformat()},
        )
        notify(
            napp,
            Notice(
                kind="service_expiring",
                key="k-2",
                category="security",
                user_id=user.id,
                data={
                    "service": "Security",
                    "service_id": 1,
                    "days": 3,
                    "ends_at": utcnow().isoformat(),
                },
            ),
        )
    run_tasks(napp)
    assert smtp.inbox.subjects("alice@example.com") == ["Security ends in 3 days"]


@pytest.mark.spec("NOT-3")
def test_digest_holds_notices_and_sends_one_summary(napp, smtp):
    user = alice(napp)
    client = as_user(napp_client(napp), user)
    client.put(
        "/api/v1/account/notification-preferences",
        json={
            "frequency": "digest",
            "channels": {
                "billing": ["email"],
                "usage": ["email"],
                "service": ["email"],
                "account": ["email"],
            },
            "thresholds": {"data": 10, "voice": 10, "sms": 10, "monetary": 500},
        },
    )
    for n, days in enumerate((7, 3)):
        with napp.database.atomic():
            notify_customer(
                napp,
                user.contact.customer_id,
                "service_expiring",
                f"e-{n}",
                "service",
                {"service": "TV", "service_id": 1, "days": days, "ends_at": utcnow().isoformat()},
            )
    # The same notice again is held once.
    with napp.database.atomic():
        notify_customer(
            napp,
            user.contact.customer_id,
            "service_expiring",
            "e-0",
            "service",
            {"service": "TV", "service_id": 1, "days": 7, "ends_at": utcnow().isoformat()},
        )
    run_tasks(napp)
    assert smtp.inbox.messages == []
    assert DigestItem.select().where(DigestItem.key.in_(["e-0", "e-1"])).count() == 2
    assert note_tasks.send_digests(napp) == 1
    assert note_tasks.send_digests(napp) == 0  # nothing left to summarise
    run_tasks(napp)
    [message] = smtp.inbox.to("alice@example.com")
    assert message["Subject"] == "Your daily summary: 2 updates"
    text = body_text(message)
    assert "TV ends in 7 days" in text and "TV ends in 3 days" in text


@pytest.mark.spec("NOT-3")
def test_preferences_page_saves_and_shows_field_errors(napp):
    client = as_user(napp_client(napp), alice(napp))
    page = client.get("/account/notifications")
    assert page.status_code == 200 and 'name="threshold_data"' in page.text
    form = {
        "frequency": "immediate",
        "channels_billing": "email",
        "threshold_data": "0",
        "threshold_voice": "10",
        "threshold_sms": "10",
        "threshold_monetary": "5.00",
    }
    bad = client.post("/account/notifications", form=form)
    assert bad.status_code == 422 and 'id="threshold_data-error"' in bad.text
    form["threshold_data"] = "25"
    ok = client.post("/account/notifications", form=form)
    assert ok.status_code == 303
    prefs = client.get("/api/v1/account/notification-preferences").json
    assert prefs["thresholds"]["data"] == 25 and prefs["channels"]["usage"] == []


@pytest.mark.spec("NOT-3")
def test_credit_threshold_is_typed_in_the_currency(napp):
    """The form takes credit as a customer writes money (3.50 GBP); the API keeps minor units."""
    client = as_user(napp_client(napp), alice(napp))
    form = {
        "frequency": "immediate",
        "threshold_data": "0",  # a second error on the same form: both are shown at once
        "threshold_voice": "10",
        "threshold_sms": "10",
        "threshold_monetary": "3.5x",
    }
    bad = client.post("/account/notifications", form=form)
    assert bad.status_code == 422
    assert 'id="threshold_monetary-error"' in bad.text and 'id="threshold_data-error"' in bad.text
    assert 'value="3.5x"' in bad.text  # what was typed comes back to be corrected
    form.update(threshold_data="20", threshold_monetary="3.50")
    assert client.post("/account/notifications", form=form).status_code == 303
    prefs = client.get("/api/v1/account/notification-preferences").json
    assert prefs["thresholds"]["monetary"] == 350
    page = client.get("/account/notifications").text
    assert "Credit below (GBP)" in page and 'value="3.50"' in page


def test_preferences_form_needs_the_csrf_token(napp):
    client = as_user(napp_client(napp), alice(napp))
    result = client.post("/account/notifications", form={"frequency": "digest"}, csrf=False)
    assert result.status_code == 403


@pytest.mark.spec("NOT-4")
def test_smtp_outage_delays_but_loses_and_doubles_nothing(napp, smtp):
    user = alice(napp)
    smtp.stop()
    with napp.database.atomic():
        notify(
            napp,
            Notice(
                kind="service_expiring",
                key="outage-1",
                category="security",
                user_id=user.id,
                data={
                    "service": "Line",
                    "service_id": 1,
                    "days": 3,
                    "ends_at": utcnow().isoformat(),
                },
            ),
        )
    napp.tasks.relay()
    worker = napp.tasks.worker(threads=1)
    worker.start()
    try:
        from tests.mailserver import wait_for

        wait_for(lambda: EmailDelivery.get().attempts >= 1)
        assert EmailDelivery.get().status == "pending"
        smtp.start()
        wait_for(lambda: EmailDelivery.get().status == "sent", timeout=30)
    finally:
        worker.stop()
    assert smtp.inbox.subjects("alice@example.com") == ["Line ends in 3 days"]


@pytest.mark.spec("NOT-4")
def test_broker_outage_keeps_work_in_the_outbox_until_it_returns(make_app, smtp):
    from engine.testing import seed_people
    from engine.models import OutboxMessage
    from tests.mailserver import free_port

    down = make_app(broker_url=f"redis://127.0.0.1:{free_port()}/0", **smtp.settings())
    seed_people(down)
    user = User.get(User.email == "alice@example.com")
    with down.database.atomic():
        notify(
            down,
            Notice(
                kind="service_expiring",
                key="b-1",
                category="security",
                user_id=user.id,
                data={
                    "service": "Box",
                    "service_id": 1,
                    "days": 1,
                    "ends_at": utcnow().isoformat(),
                },
            ),
        )
    assert down.tasks.relay() == 0
    assert (
        OutboxMessage.get(OutboxMessage.actor == "plugins.email.tasks.deliver_email").sent_at
        is None
    )
    assert OutboxMessage.select().where(OutboxMessage.last_error != "").exists()
    up = make_app(migrate=False, **smtp.settings())  # same database, a working broker
    run_tasks(up)
    run_tasks(up)
    assert smtp.inbox.subjects("alice@example.com").count("Box ends tomorrow") == 1


def napp_client(app):
    from engine.testing import Client

    return Client(app)


@pytest.mark.spec("NOT-1")
def test_hook_balance_low_and_service_status_changed_become_emails(napp, smtp):
    from engine.registry import Balance

    customer = napp.demo["customers"]["alice"]
    service = mobile_service(napp, customer)
    low = Balance(
        id=None,
        type="data",
        remaining=400_000_000,
        initial=5_000_000_000,
        unit="bytes",
        weight=30,
        expires_at=None,
    )
    with napp.database.atomic():
        napp.plugins.hook.balance_low(app=napp, service=service, balance=low, threshold=10)
        napp.plugins.hook.service_status_changed(
            app=napp,
            service=service,
            old_status="active",
            new_status="suspended",
            reason="Unpaid bill",
        )
        napp.plugins.hook.service_status_changed(
            app=napp, service=service, old_status="suspended", new_status="active", reason=""
        )
    run_tasks(napp)
    subjects = sorted(smtp.inbox.subjects("alice@example.com"))
    assert subjects == [
        "Running low: 400 MB of data left on Test line 42",
        "Test line 42 is active",
        "Test line 42 is no longer active",
    ]
    [suspended] = [m for m in smtp.inbox.messages if "no longer" in m["Subject"]]
    text = body_text(suspended)
    assert "Reason: Unpaid bill" in text and "http://portal.test/services/" in text
    html = [p for p in suspended.walk() if p.get_content_type() == "text/html"][0]
    assert "http://portal.test/services/" in html.get_payload(decode=True).decode()


class Quiet:
    """A partner's routing rule: nothing about usage goes out by email."""

    @hookimpl(tryfirst=True)
    def notification_route(self, app, notice, channel):
        return "skip" if notice.category == "usage" else None


def test_hook_notification_route(make_app, smtp):
    from engine.testing import seed_people

    app = make_app(plugins=[("quiet", Quiet())], **smtp.settings())
    seed_people(app)
    user = User.get(User.email == "alice@example.com")
    data = {"service": "TV", "service_id": 1, "days": 3, "ends_at": utcnow().isoformat()}
    with app.database.atomic():
        notify(
            app,
            Notice(
                kind="service_expiring", key="r-1", category="usage", user_id=user.id, data=data
            ),
        )
        notify(
            app,
            Notice(
                kind="service_expiring", key="r-2", category="service", user_id=user.id, data=data
            ),
        )
    run_tasks(app)
    assert EmailDelivery.select().count() == 1
    assert smtp.inbox.subjects() == ["TV ends in 3 days"]


class Strict:
    @hookimpl(tryfirst=True)
    def balance_threshold(self, app, customer_id, balance_type):
        return 50 if balance_type == "data" else None


def test_hook_balance_threshold(make_app, napp):
    from engine.notify import threshold

    alice_user = alice(napp)
    customer_id = alice_user.contact.customer_id
    assert threshold(napp, customer_id, "data") == 10  # the notifications plugin's default
    client = as_user(napp_client(napp), alice_user)
    client.put(
        "/api/v1/account/notification-preferences",
        json={
            "frequency": "immediate",
            "channels": {"billing": ["email"]},
            "thresholds": {"data": 20, "voice": 15, "sms": 5, "monetary": 300},
        },
    )
    assert threshold(napp, customer_id, "data") == 20
    assert threshold(napp, customer_id, "mms") == 5  # MMS follows the SMS threshold
    assert threshold(napp, customer_id, "monetary") == 300
    # the bulk form rating uses answers the same, many customers in one query
    bob_id = User.get(User.email == "bob@example.com").contact.customer_id
    for kind, mine in (("data", 20), ("mms", 5), ("monetary", 300)):
        bulk = napp.plugins.hook.balance_thresholds(
            app=napp, customer_ids=[customer_id, bob_id], balance_type=kind
        )
        assert bulk == {customer_id: mine, bob_id: threshold(napp, bob_id, kind)}
    strict = make_app(plugins=[("strict", Strict())], migrate=False)
    assert threshold(strict, customer_id, "data") == 50
    assert threshold(strict, customer_id, "voice") == 15
