"""Outbound webhooks (INT-6): signed deliveries to a real HTTPS receiver on loopback, once each;
retries with backoff; SEC-2 refusals; replay; console and operator API permissions; deliveries
that survive a broker losing its messages; add-ons provisioned by the operator's call back."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest

from billing_helpers import customer, staff
from engine import hookimpl
from engine.db import utcnow
from engine.events import EVENT_TYPES, emit
from engine.models import AuditEvent, OutboxMessage
from engine.testing import Client, PrincipalHeader, as_user, problem, run_tasks
from https_service import HTTPSService
from plugins.addons.models import ServiceAddon
from plugins.operator import tokens
from plugins.webhooks import service
from plugins.webhooks.models import WebhookDelivery, WebhookEndpoint
from topups_helpers import addon_catalogue, api_for, service_of

STAFF_API = "/api/v1/staff/webhooks"
OPERATOR_API = "/api/v1/operator"


def verify(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """The recipe in docs/integration.md (Webhooks), as a receiver writes it."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    fresh = abs(time.time() - timestamp) <= tolerance
    return fresh and hmac.compare_digest(expected, parts["v1"])


@pytest.fixture
def receiver(tmp_path, monkeypatch):
    """The operator's receiver: real HTTPS on 127.0.0.1, trusted through its own CA."""
    server = HTTPSService(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_file))
    yield server
    server.close()


@pytest.fixture
def wapp(make_app):
    return make_app(
        plugins=[("test-auth", PrincipalHeader())],
        outbound={"unsafe_allow_loopback_for_tests": True},  # the receiver's 127.0.0.1
    )


@pytest.fixture
def admin(wapp):
    return as_user(Client(wapp), staff("admin", name="ada"))


def subscribe(admin, receiver, types=("service.cancelled",)) -> dict:
    made = admin.post(
        STAFF_API, json={"url": receiver.url_for("127.0.0.1", "/hooks"), "event_types": types}
    )
    assert made.status_code == 201, made.text
    return made.json


def announce(app, event_type="service.cancelled", **data):
    with app.database.atomic():
        emit(app, event_type, {"service_id": 7, **data}, customer_id=None)


def received(receiver) -> list[tuple[dict, bytes]]:
    return [({k.lower(): v for k, v in h.items()}, body) for h, body in receiver.received]


def test_hook_event_emitted(make_app):
    seen = []

    class Listener:
        @hookimpl
        def event_emitted(self, app, event_type, data, customer_id):
            seen.append((event_type, data, customer_id))

    app = make_app(plugins=[("acme", Listener())])
    emit(app, "service.cancelled", {"service_id": 3}, customer_id=9)
    assert seen == [("service.cancelled", {"service_id": 3}, 9)]
    with pytest.raises(ValueError):
        emit(app, "gadget.exploded", {})


@pytest.mark.spec("INT-6")
def test_int6_a_subscribed_event_is_delivered_signed_once(wapp, admin, receiver):
    endpoint = subscribe(admin, receiver)
    secret = endpoint["secret"]
    assert secret.startswith("whsec_")
    assert "secret" not in admin.get(f"{STAFF_API}/{endpoint['id']}").json  # shown once
    assert WebhookEndpoint.get_by_id(endpoint["id"]).secret.startswith("sealed1:")
    announce(wapp, reason="moving")
    announce(wapp, "payment.succeeded")  # not subscribed: nothing goes out
    run_tasks(wapp)
    service.send_due(wapp, utcnow() + timedelta(hours=1))  # the sweep sends nothing again
    [(headers, body)] = received(receiver)
    assert receiver.paths == ["/hooks"]
    assert verify(secret, headers["portico-signature"], body)
    assert not verify(secret, headers["portico-signature"], body + b" ")
    assert not verify("whsec_other", headers["portico-signature"], body)
    event = json.loads(body)
    assert event["type"] == "service.cancelled" and headers["portico-event-type"] == event["type"]
    assert event["data"] == {"service_id": 7, "reason": "moving"}
    assert event["id"].startswith("evt_") and headers["portico-event-id"] == event["id"]
    assert event["created"]
    [delivery] = admin.get(f"{STAFF_API}/{endpoint['id']}/deliveries").json["items"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1
    assert delivery["last_status_code"] == 201 and delivery["event_id"] == event["id"]


@pytest.mark.spec("INT-6")
def test_int6_a_real_change_emits_its_event(wapp, admin, receiver):
    """contact.changed from the account plugin, in the transaction of the change."""
    subscribe(admin, receiver, ["contact.changed"])
    c, user = customer("alice")
    changed = api_for(wapp, user).patch("/api/v1/account", json={"phone": "+447700900123"})
    assert changed.status_code == 200, changed.text
    run_tasks(wapp)
    [(_, body)] = received(receiver)
    event = json.loads(body)
    assert event["type"] == "contact.changed" and event["data"]["customer_id"] == c.id
    assert event["data"]["changed"]["phone"][1] == "+447700900123"
    assert event["data"]["customer_external_id"] is None  # made in Portico: no external id


@pytest.mark.spec("INT-6", "INT-7")
def test_int6_an_event_about_a_customer_names_it_by_the_operators_external_id(
    wapp, admin, receiver
):
    """The operator API shows no Portico ids, so payment.succeeded's customer_id alone could
    not be matched to the operator's customer (found by the INT-7 end-to-end test)."""
    subscribe(admin, receiver, ["payment.succeeded"])
    c, _ = customer("alice")
    c.external_id = "ACC-1001"
    c.save()
    with wapp.database.atomic():
        emit(wapp, "payment.succeeded", {"payment_id": 3, "customer_id": c.id}, customer_id=c.id)
    run_tasks(wapp)
    [(_, body)] = received(receiver)
    assert json.loads(body)["data"] == {
        "payment_id": 3,
        "customer_id": c.id,
        "customer_external_id": "ACC-1001",
    }


@pytest.mark.spec("INT-6")
def test_int6_the_retry_schedule_backs_off_for_24_hours():
    start = utcnow()
    times = service.schedule(start, start + timedelta(hours=24))
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[:4] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert all(b >= a for a, b in zip(gaps, gaps[1:])) and max(gaps) == timedelta(hours=6)
    assert times[-1] <= start + timedelta(hours=24)
    assert times[-1] + service.backoff(len(times)) > start + timedelta(hours=24)
    assert times[-1] >= start + timedelta(hours=18)  # retried for (nearly) the whole day


@pytest.mark.spec("INT-6")
def test_int6_a_failing_receiver_is_retried_with_backoff_then_marked_failed(wapp, admin, receiver):
    subscribe(admin, receiver)
    receiver.status = 500
    announce(wapp)
    run_tasks(wapp)
    delivery = WebhookDelivery.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    wait = delivery.next_attempt_at - delivery.last_attempt_at
    assert wait == timedelta(seconds=30)
    assert service.send_due(wapp, delivery.last_attempt_at + timedelta(seconds=29)) == 0
    receiver.status = 200
    assert service.send_due(wapp, delivery.next_attempt_at) == 1  # no sleeping: its time is given
    delivery = WebhookDelivery.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 200)
    first, second = received(receiver)
    assert first[0]["portico-event-id"] == second[0]["portico-event-id"]  # de-duplicable
    # Past its retry window a failure is final.
    receiver.status = 503
    announce(wapp)
    late = WebhookDelivery.select().order_by(WebhookDelivery.id.desc()).get()
    when = late.retry_until - timedelta(seconds=10)
    assert service.attempt(wapp, late.id, when, force=True) == "failed"
    assert WebhookDelivery.get_by_id(late.id).next_attempt_at is None


@pytest.mark.spec("INT-6", "SEC-2")
def test_int6_sec2_endpoints_must_be_https_at_public_addresses(make_app, receiver):
    app = make_app(plugins=[("test-auth", PrincipalHeader())])  # no loopback allowance
    admin = as_user(Client(app), staff("admin", name="ada"))
    for url, words in (
        ("http://example.com/hooks", "url"),
        (receiver.url_for("127.0.0.1", "/hooks"), "loopback"),
        ("https://10.1.2.3/hooks", "private"),
        ("https://169.254.169.254/latest", "link-local"),
    ):
        body = problem(admin.post(STAFF_API, json={"url": url, "event_types": ["invoice.paid"]}))
        assert body["status"] == 422, body
        assert words in json.dumps(body["errors"]["url"]).lower() or words == "url", body
    assert WebhookEndpoint.select().count() == 0
    # An endpoint that points at loopback by sending time (here: written straight in) is
    # refused when sending: nothing reaches it, and the delivery says why.
    WebhookEndpoint.create(
        url=receiver.url_for("127.0.0.1", "/hooks"),
        event_types="invoice.paid",
        secret="whsec_x",
    )
    announce(app, "invoice.paid")
    delivery = WebhookDelivery.get()
    assert service.attempt(app, delivery.id, force=True) == "pending"
    delivery = WebhookDelivery.get()
    assert delivery.last_error.startswith("refused:") and "loopback" in delivery.last_error
    assert receiver.received == []


@pytest.mark.spec("INT-6")
def test_int6_staff_replay_a_delivery_audited(wapp, admin, receiver):
    endpoint = subscribe(admin, receiver)
    announce(wapp)
    run_tasks(wapp)
    delivery = WebhookDelivery.get()
    pages = Client(wapp, headers={"X-Test-User": admin.headers["X-Test-User"]})
    page = pages.get(f"/staff/webhooks/{endpoint['id']}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and delivery.event.uid in page.text
    assert f"/staff/webhook-deliveries/{delivery.id}/replay" in page.text
    button = pages.post(f"/staff/webhook-deliveries/{delivery.id}/replay", form={})
    assert button.status_code == 303, button.text
    run_tasks(wapp)
    again = admin.post(f"/api/v1/staff/webhook-deliveries/{delivery.id}/replay")
    assert again.status_code == 202 and again.json["status"] == "pending"
    run_tasks(wapp)
    ids = {h["portico-event-id"] for h, _ in received(receiver)}
    assert len(receiver.received) == 3 and ids == {delivery.event.uid}
    assert WebhookDelivery.get().status == "delivered"
    replays = AuditEvent.select().where(AuditEvent.action == "webhook.replayed")
    assert replays.count() == 2
    assert admin.post("/api/v1/staff/webhook-deliveries/99999/replay").status_code == 404


@pytest.mark.spec("INT-6")
def test_int6_staff_change_and_delete_an_endpoint_in_the_console(wapp, admin, receiver):
    endpoint = subscribe(admin, receiver, types=("invoice.paid",))
    pages = Client(wapp, headers={"X-Test-User": admin.headers["X-Test-User"]})
    path = f"/staff/webhooks/{endpoint['id']}"
    shown = pages.get(path, headers={"Accept": "text/html"})
    assert shown.status_code == 200 and 'value="invoice.paid" checked' in shown.text
    url = receiver.url_for("127.0.0.1", "/moved")
    form = {"url": url, "description": "CRM", "event_types": ["payment.failed", "invoice.paid"]}
    saved = pages.post(path, form={**form, "enabled_shown": "1"})  # the box left unticked
    assert saved.status_code == 303 and saved.headers["location"] == f"{path}?saved=1"
    row = WebhookEndpoint.get_by_id(endpoint["id"])
    assert (row.url, row.description, row.enabled) == (url, "CRM", False)
    assert row.types == ["invoice.paid", "payment.failed"]
    # Bad input: the page again with the message, and the endpoint as it was.
    bad = pages.post(path, form={**form, "url": "http://example.com/x", "enabled": "1"})
    assert bad.status_code == 422 and "error" in bad.text
    assert WebhookEndpoint.get_by_id(endpoint["id"]).url == url
    assert pages.post(path, form={**form, "event_types": []}).status_code == 422
    audit = AuditEvent.select().where(AuditEvent.action == "webhook.updated")
    assert audit.count() == 1 and audit.get().data["enabled"] is False
    assert pages.post(f"{path}/delete", form={}, csrf=False).status_code == 403
    # Delete: the endpoint and its pending deliveries go; audited; a second time is a 404.
    WebhookEndpoint.update(enabled=True).execute()
    announce(wapp, "invoice.paid")
    assert WebhookDelivery.select().count() == 1
    gone = pages.post(f"{path}/delete", form={})
    assert gone.status_code == 303 and gone.headers["location"] == "/staff/webhooks?deleted=1"
    assert WebhookEndpoint.select().count() == 0 and WebhookDelivery.select().count() == 0
    assert AuditEvent.select().where(AuditEvent.action == "webhook.deleted").count() == 1
    assert pages.post(f"{path}/delete", form={}).status_code == 404


@pytest.mark.spec("INT-6")
def test_int6_the_console_is_for_admins_only(wapp, receiver):
    agent = as_user(Client(wapp), staff("can_impersonate billing", name="agnes"))
    body = {"url": receiver.url_for("127.0.0.1", "/h"), "event_types": ["invoice.paid"]}
    assert agent.get(STAFF_API).status_code == 403
    assert agent.post(STAFF_API, json=body).status_code == 403
    html = agent.get("/staff/webhooks", headers={"Accept": "text/html"})
    assert html.status_code == 403
    _, user = customer("alice")
    assert api_for(wapp, user).get(STAFF_API).status_code in (401, 403)
    admin = as_user(Client(wapp), staff("admin", name="ada"))
    page = admin.get("/staff/webhooks", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "invoice.paid" in page.text
    assert WebhookEndpoint.select().count() == 0


@pytest.mark.spec("INT-6", "INT-1")
def test_int6_the_operator_api_needs_webhooks_write(wapp, receiver):
    admin_row = staff("admin", name="ada")
    expires = utcnow() + timedelta(days=5)
    reader, _ = tokens.create(wapp, "CRM", ["read"], expires, admin_row)
    writer, _ = tokens.create(wapp, "CRM", ["read", "webhooks:write"], expires, admin_row)
    read = Client(wapp, headers={"Authorization": f"Bearer {reader}"})
    write = Client(wapp, headers={"Authorization": f"Bearer {writer}"})
    body = {"url": receiver.url_for("127.0.0.1", "/op"), "event_types": sorted(EVENT_TYPES)}
    refused = problem(read.post(f"{OPERATOR_API}/webhooks", json=body))
    assert refused["status"] == 403 and refused["type"].endswith("missing-scope")
    made = write.post(f"{OPERATOR_API}/webhooks", json=body)
    assert made.status_code == 201 and made.json["secret"].startswith("whsec_")
    listed = read.get(f"{OPERATOR_API}/webhooks").json["items"]
    assert [e["id"] for e in listed] == [made.json["id"]] and "secret" not in listed[0]
    bad = problem(write.post(f"{OPERATOR_API}/webhooks", json={**body, "event_types": ["x"]}))
    assert bad["status"] == 422 and "event_types" in bad["errors"]
    off = write.patch(f"{OPERATOR_API}/webhooks/{made.json['id']}", json={"enabled": False})
    assert off.status_code == 200 and off.json["enabled"] is False
    announce(wapp)  # a disabled endpoint gets nothing
    assert WebhookDelivery.select().count() == 0
    assert write.delete(f"{OPERATOR_API}/webhooks/{made.json['id']}").status_code == 204
    assert read.get(f"{OPERATOR_API}/webhooks/{made.json['id']}").status_code == 404
    actions = [
        e.action for e in AuditEvent.select().where(AuditEvent.action.startswith("webhook."))
    ]
    assert actions == ["webhook.created", "webhook.updated", "webhook.deleted"]


@pytest.mark.spec("INT-6", "OPS-6")
def test_int6_a_broker_that_lost_its_messages_loses_no_delivery(wapp, admin, receiver):
    """The delivery row is the truth: with its task gone, the sweep sends it once its lease
    has passed."""
    subscribe(admin, receiver)
    announce(wapp)
    OutboxMessage.delete().execute()  # the task never reaches a worker
    delivery = WebhookDelivery.get()
    assert service.send_due(wapp) == 0  # the task still has it, for now
    assert service.send_due(wapp, delivery.next_attempt_at) == 1
    [(headers, body)] = received(receiver)
    assert headers["portico-event-id"] == json.loads(body)["id"] == delivery.event.uid
    assert WebhookDelivery.get().status == "delivered"


@pytest.mark.spec("INT-6", "ADD-3")
def test_int6_an_add_on_provisioned_by_the_operators_call_back(wapp, admin, receiver):
    subscribe(admin, receiver, ["addon.ordered", "addon.provisioned"])
    c, user = customer("alice")
    line = service_of(c, "broadband")
    products = addon_catalogue(wapp)
    product = next(p for p in products.values() if p.service_type == "broadband")
    product.provisioner, product.one_off_price = "webhook", 0
    product.save()
    ordered = api_for(wapp, user).post(
        f"/api/v1/services/{line.id}/addons", json={"product_id": product.id}
    )
    assert ordered.status_code in (200, 201, 202), ordered.text
    addon = ServiceAddon.get()
    assert addon.status == "pending"
    from plugins.addons import service as addons

    addons.provision(wapp, addon.id)  # the webhook provisioner: waiting for the operator
    assert ServiceAddon.get().status == "pending"
    for delivery in WebhookDelivery.select():
        service.attempt(wapp, delivery.id, force=True)
    [(_, body)] = received(receiver)
    event = json.loads(body)
    assert event["type"] == "addon.ordered" and event["data"]["addon_id"] == addon.id
    expires = utcnow() + timedelta(days=5)
    token, _ = tokens.create(wapp, "OSS", ["read", "services:write"], expires, staff("admin"))
    oss = Client(wapp, headers={"Authorization": f"Bearer {token}"})
    done = oss.post(
        f"{OPERATOR_API}/addons/{addon.id}/provisioned",
        json={"reference": "ip-1", "detail": "198.51.100.9"},
    )
    assert done.status_code == 200, done.text
    assert done.json["status"] == "active" and done.json["detail"] == "198.51.100.9"
    assert problem(oss.post(f"{OPERATOR_API}/addons/{addon.id}/failed", json={}))["status"] == 409
    assert oss.post(f"{OPERATOR_API}/addons/99999/provisioned", json={}).status_code == 404
    types = [json.loads(d.event.data) and d.event.type for d in WebhookDelivery.select()]
    assert sorted(types) == ["addon.ordered", "addon.provisioned"]
