"""Sending one push message through the browser vendor's push service (pywebpush)."""

from __future__ import annotations

import json
import logging

from pywebpush import WebPushException, webpush

from engine import outbound
from engine.db import utcnow
from engine.tasks import task
from plugins.webpush.models import PushDelivery, PushSubscription

log = logging.getLogger("portico.webpush")


@task(max_retries=10, min_backoff=2000)
def deliver_push(app, delivery_id: int) -> None:
    row = PushDelivery.get_or_none(PushDelivery.id == delivery_id)
    if row is None or row.status != "pending":
        return
    sub = row.subscription
    conf = app.settings.plugin("webpush")
    try:  # SEC-2: checked again now (the name may point elsewhere since), and pinned
        http = outbound.session(app, sub.endpoint)
    except outbound.UnresolvableURL:
        raise  # perhaps a passing DNS failure: the task is retried
    except outbound.UnsafeURL as exc:
        log.warning("push %s not sent: %s", row.id, exc)
        PushDelivery.update(status="refused").where(PushDelivery.id == row.id).execute()
        return
    try:
        with http:
            webpush(
                subscription_info={
                    "endpoint": sub.endpoint,
                    "keys": {"p256dh": sub.p256dh, "auth": sub.auth},
                },
                data=json.dumps({"title": row.title, "body": row.body, "url": row.url}),
                vapid_private_key=conf.vapid_private_key,
                vapid_claims={"sub": conf.vapid_subject},
                ttl=conf.ttl_seconds,
                timeout=10,
                requests_session=http,
            )
    except WebPushException as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (404, 410):  # the browser unsubscribed: forget it, don't retry
            PushDelivery.update(status="gone").where(PushDelivery.id == row.id).execute()
            PushSubscription.delete().where(PushSubscription.id == sub.id).execute()
            return
        raise
    now = utcnow()
    PushDelivery.update(status="sent", sent_at=now).where(PushDelivery.id == row.id).execute()
    PushSubscription.update(last_used_at=now).where(PushSubscription.id == sub.id).execute()
