"""Webhooks (INT-6): endpoints, events recorded with their deliveries, signed sending, retries.

An event and one delivery row per subscribed endpoint are written in the transaction of the
change (``record_event``, the ``event_emitted`` hook), with a task queued through the outbox
to send each at once. The rows are the truth: a delivery the broker lost, or one that
failed, is sent again by the periodic ``send_due`` sweep when its ``next_attempt_at`` comes,
with exponential backoff, until ``retry_until`` (``[webhooks] retry_hours``, 24 by default)
has passed; then it is ``failed``. Staff (and the operator API) can replay one.

A delivery is claimed before it is sent (``next_attempt_at`` moved a lease ahead by a
conditional UPDATE), so the task and the sweep never send it at the same moment. Delivery
is still at least once (a process dying after the POST): receivers de-duplicate by the
event id, which every delivery of one event carries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta

import requests

from engine import audit, outbound
from engine.db import utcnow
from engine.errors import invalid
from engine.models import Customer
from engine.security import new_token, seal, unseal
from plugins.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

log = logging.getLogger("portico.webhooks")

SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "Portico-Signature"
EVENT_ID_HEADER = "Portico-Event-Id"
#: A claimed delivery is not picked up by the sweep for this long (the task is sending it).
LEASE = timedelta(minutes=5)
#: The first retry waits this long; each later one twice as long, up to ``MAX_DELAY``.
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=6)
#: How many due deliveries one sweep sends (the next minute's sweep takes the rest).
SWEEP_BATCH = 100


# -- endpoints ---------------------------------------------------------------------------------


def _check(app, url: str) -> None:
    try:
        outbound.check_url(app, url)  # SEC-2; checked again at each delivery
    except outbound.UnsafeURL as exc:
        raise invalid({"url": [str(exc)]}) from None


def describe(endpoint: WebhookEndpoint) -> dict:
    """How audit events name an endpoint (never its secret)."""
    return {"url": endpoint.url, "event_types": endpoint.types, "enabled": endpoint.enabled}


def create_endpoint(ctx, values: dict) -> WebhookEndpoint:
    """A new endpoint (audited); its ``plain_secret`` is shown to the caller this once."""
    app = ctx.app
    _check(app, values["url"])
    secret = SECRET_PREFIX + new_token(32)
    with app.database.atomic():
        endpoint = WebhookEndpoint.create(
            url=values["url"],
            description=values.get("description", ""),
            event_types=" ".join(sorted(set(values["event_types"]))),
            enabled=values.get("enabled", True),
            secret=seal(app.settings.secret_keys, secret),
        )
        audit.record(ctx, "webhook.created", f"webhook:{endpoint.id}", describe(endpoint))
    endpoint.plain_secret = secret
    return endpoint


def update_endpoint(ctx, endpoint: WebhookEndpoint, values: dict) -> WebhookEndpoint:
    if "url" in values:
        _check(ctx.app, values["url"])
        endpoint.url = values["url"]
    if "event_types" in values:
        endpoint.event_types = " ".join(sorted(set(values["event_types"])))
    for name in ("description", "enabled"):
        if name in values:
            setattr(endpoint, name, values[name])
    endpoint.updated_at = utcnow()
    with ctx.app.database.atomic():
        endpoint.save()
        audit.record(ctx, "webhook.updated", f"webhook:{endpoint.id}", describe(endpoint))
    return endpoint


def delete_endpoint(ctx, endpoint: WebhookEndpoint) -> None:
    """Remove an endpoint with its deliveries (what is pending is not sent)."""
    with ctx.app.database.atomic():
        endpoint.delete_instance(recursive=True)
        audit.record(ctx, "webhook.deleted", f"webhook:{endpoint.id}", describe(endpoint))


# -- events ------------------------------------------------------------------------------------


def record_event(app, event_type: str, data: dict, customer_id: int | None) -> WebhookEvent | None:
    """The ``event_emitted`` hook: the event and its deliveries, in the caller's transaction,
    and a task per delivery (through the outbox). Nothing is written without a subscriber."""
    endpoints = [
        e
        for e in WebhookEndpoint.select().where(WebhookEndpoint.enabled == True)  # noqa: E712
        if event_type in e.types
    ]
    if not endpoints:
        return None
    from plugins.webhooks import tasks  # lazily: it imports this module

    if customer_id is not None and "customer_external_id" not in data:
        # The operator's systems know their customers by external id only (the operator API
        # never shows Portico's ids), so every event about a customer names it that way.
        data = {**data, "customer_external_id": _customer_external_id(customer_id)}
    now = utcnow()
    with app.database.atomic():
        event = WebhookEvent.create(
            uid="evt_" + new_token(18),
            type=event_type,
            data=json.dumps(data, default=str, sort_keys=True),
            customer_id=customer_id,
            created_at=now,
        )
        for endpoint in endpoints:
            delivery = WebhookDelivery.create(
                event=event,
                endpoint=endpoint,
                next_attempt_at=now + LEASE,  # the task sends it now; the sweep if it is lost
                retry_until=now + _window(app),
                created_at=now,
            )
            app.tasks.enqueue(tasks.deliver, delivery.id)
    return event


def _customer_external_id(customer_id: int) -> str | None:
    row = Customer.select(Customer.external_id).where(Customer.id == customer_id).first()
    return row.external_id if row else None


def _window(app) -> timedelta:
    return timedelta(hours=app.settings.plugin("webhooks")["retry_hours"])


def body_of(event: WebhookEvent) -> bytes:
    """What every delivery of ``event`` sends: its id, type, time and data, as JSON."""
    return json.dumps(
        {
            "id": event.uid,
            "type": event.type,
            "created": event.created_at.isoformat(),
            "data": json.loads(event.data),
        },
        separators=(",", ":"),
    ).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the endpoint's secret>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt: 30 s, 1 min, 2 min, ... 6 h."""
    return min(FIRST_DELAY * 2 ** max(attempts - 1, 0), MAX_DELAY)


def schedule(created: datetime, until: datetime) -> list[datetime]:
    """Every attempt time of a delivery that always fails (for docs and tests)."""
    times, at, n = [created], created, 0
    while True:
        n += 1
        at = at + backoff(n)
        if at > until:
            return times
        times.append(at)


# -- sending -----------------------------------------------------------------------------------


def _claim(delivery_id: int, now: datetime, force: bool) -> bool:
    """Take a pending delivery for one attempt; False if it is settled or another has it."""
    query = WebhookDelivery.update(next_attempt_at=now + LEASE).where(
        (WebhookDelivery.id == delivery_id) & (WebhookDelivery.status == "pending")
    )
    if not force:
        query = query.where(WebhookDelivery.next_attempt_at <= now)
    return bool(query.execute())


def attempt(app, delivery_id: int, now: datetime | None = None, force: bool = False) -> str:
    """Send one pending delivery once and record how it went; returns its status after.

    ``force`` (the task queued with the event, a replay) sends it even before it is due.
    """
    now = now or utcnow()
    if not _claim(delivery_id, now, force):
        row = WebhookDelivery.get_or_none(WebhookDelivery.id == delivery_id)
        return row.status if row else "gone"
    delivery = WebhookDelivery.get_by_id(delivery_id)
    endpoint, event = delivery.endpoint, delivery.event
    code, error = _post(app, endpoint, event)
    attempts = delivery.attempts + 1
    changes: dict = {
        "attempts": attempts,
        "last_attempt_at": now,
        "last_status_code": code,
        "last_error": error[:300],
    }
    if code is not None and 200 <= code < 300:
        changes.update(status="delivered", delivered_at=now, next_attempt_at=None)
    elif not endpoint.enabled or now + backoff(attempts) > delivery.retry_until:
        changes.update(status="failed", next_attempt_at=None)
    else:
        changes.update(next_attempt_at=now + backoff(attempts))
    WebhookDelivery.update(changes).where(WebhookDelivery.id == delivery_id).execute()
    if changes.get("status") == "failed":
        log.warning("webhook delivery %s failed for good: %s %s", delivery_id, code, error)
    return changes.get("status", "pending")


def _post(app, endpoint: WebhookEndpoint, event: WebhookEvent) -> tuple[int | None, str]:
    """POST the event, signed now: (the answer's status code or None, an error or "")."""
    body = body_of(event)
    secret = unseal(app.settings.secret_keys, endpoint.secret)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Portico-Webhooks/1",
        SIGNATURE_HEADER: signature(secret, int(time.time()), body),
        EVENT_ID_HEADER: event.uid,
        "Portico-Event-Type": event.type,
    }
    try:  # SEC-2: checked again now (the name may point elsewhere since), and pinned
        with outbound.session(app, endpoint.url) as http:
            answer = http.post(
                endpoint.url,
                data=body,
                headers=headers,
                timeout=app.settings.plugin("webhooks")["timeout_seconds"],
                allow_redirects=False,
            )
    except outbound.UnsafeURL as exc:
        return None, f"refused: {exc}"
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"
    error = "" if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"
    return answer.status_code, error


def send_due(app, now: datetime | None = None) -> int:
    """Send the deliveries whose time has come (retries, and any the broker lost)."""
    now = now or utcnow()
    due = [
        d.id
        for d in WebhookDelivery.select(WebhookDelivery.id)
        .where((WebhookDelivery.status == "pending") & (WebhookDelivery.next_attempt_at <= now))
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(SWEEP_BATCH)
    ]
    for delivery_id in due:
        attempt(app, delivery_id, now)
    return len(due)


def replay(ctx, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again (whatever its status), with a fresh retry window (audited)."""
    from plugins.webhooks import tasks  # lazily: it imports this module

    app, now = ctx.app, utcnow()
    with app.database.atomic():
        WebhookDelivery.update(
            status="pending", next_attempt_at=now + LEASE, retry_until=now + _window(app)
        ).where(WebhookDelivery.id == delivery.id).execute()
        audit.record(
            ctx,
            "webhook.replayed",
            f"webhook_delivery:{delivery.id}",
            {"event": delivery.event.uid, "endpoint": delivery.endpoint_id},
        )
        app.tasks.enqueue(tasks.deliver, delivery.id, True)
    return WebhookDelivery.get_by_id(delivery.id)
