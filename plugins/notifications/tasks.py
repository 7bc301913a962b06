"""Periodic notification jobs: the daily digest and service expiry warnings (NOT-1)."""

from __future__ import annotations

from datetime import timedelta

from engine.db import utcnow
from engine.models import Service, User
from engine.notify import Notice, notify_customer
from engine.tasks import task
from plugins.notifications.models import DigestItem

EXPIRY_STAGES = (7, 3, 1)  # days before the end date, each warned once


@task(periodic="0 8 * * *")
def send_digests(app) -> int:
    """Send each user one email with the notices held for their digest; returns how many."""
    sent = 0
    day = utcnow().date().isoformat()
    user_ids = [
        r.user_id
        for r in DigestItem.select(DigestItem.user)
        .distinct()
        .where(DigestItem.digest_key.is_null() & (DigestItem.channel == "email"))
    ]
    email = app.channels.get("email")
    for user_id in user_ids:
        user = User.get_or_none(User.id == user_id)
        with app.database.atomic():
            items = list(
                DigestItem.select()
                .where(
                    (DigestItem.user == user_id)
                    & DigestItem.digest_key.is_null()
                    & (DigestItem.channel == "email")
                )
                .order_by(DigestItem.id)
            )
            if not items or user is None or email is None:
                continue
            key = f"digest:{user_id}:{day}:{items[-1].id}"
            lines = [
                {
                    "subject": _subject(app, i, user.locale),
                    "category": i.category,
                    "at": i.created_at.isoformat(),
                }
                for i in items
            ]
            email.accept(
                app,
                Notice(
                    kind="digest",
                    key=key,
                    category="account",
                    user_id=user_id,
                    data={"items": lines, "count": len(lines)},
                ),
            )
            (
                DigestItem.update(digest_key=key)
                .where(DigestItem.id.in_([i.id for i in items]))
                .execute()
            )
            sent += 1
    return sent


def _subject(app, item: DigestItem, locale: str) -> str:
    text = app.theme.render_plain(
        f"email/{item.kind}.txt",
        locale or app.settings.default_locale,
        data=item.data,
        app_url=app.url,
        support=app.settings.support,
    )
    return text.partition("\n")[0].strip()


@task(periodic="15 * * * *")
def warn_expiring_services(app) -> int:
    """Warn 7, 3 and 1 days before a service ends; each stage once. Returns notices raised."""
    now = utcnow()
    horizon = now + timedelta(days=max(EXPIRY_STAGES))
    ending = Service.select().where(
        (Service.status == "active")
        & (
            ((Service.expires_at > now) & (Service.expires_at <= horizon))
            | (
                (Service.auto_renew == False)  # noqa: E712
                & (Service.renews_at > now)
                & (Service.renews_at <= horizon)
            )
        )
    )
    raised = 0
    for service in ending:
        ends = min(
            d
            for d in (service.expires_at, None if service.auto_renew else service.renews_at)
            if d is not None
        )
        left = ends - now
        stage = min(d for d in EXPIRY_STAGES if left <= timedelta(days=d))
        with app.database.atomic():
            notify_customer(
                app,
                service.customer_id,
                "service_expiring",
                key=f"expiry:{service.id}:{ends.date().isoformat()}:{stage}",
                category="service",
                data={
                    "service_id": service.id,
                    "service": service.name,
                    "ends_at": ends.isoformat(),
                    "days": stage,
                },
            )
        raised += 1
    return raised
