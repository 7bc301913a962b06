"""Background delivery of one email, rendered in the recipient's language, at most once."""

from __future__ import annotations

import logging
from datetime import timedelta

from engine import mail
from engine.db import utcnow
from engine.models import User
from engine.tasks import task
from plugins.email.models import EmailDelivery

log = logging.getLogger("portico.email")


def render(app, delivery: EmailDelivery) -> tuple[str, str, str | None]:
    """(subject, text, html) from ``email/<kind>.txt`` (first line: subject) and ``.html``."""
    values = {"data": delivery.data, "app_url": app.url, "support": app.settings.support}
    theme = app.theme
    tz = recipient_zone(app, delivery)
    text = theme.render_plain(f"email/{delivery.kind}.txt", delivery.locale, tz, **values)
    subject, _, body = text.partition("\n")
    try:
        html = theme.render_plain(f"email/{delivery.kind}.html", delivery.locale, tz, **values)
    except Exception as exc:  # an HTML part is optional
        if type(exc).__name__ != "TemplateNotFound":
            raise
        html = None
    return subject.strip(), body.lstrip("\n"), html


def recipient_zone(app, delivery: EmailDelivery) -> str:
    """Times in an email read in the recipient's time zone, else the portal's."""
    zone = ""
    if delivery.user_id:
        zone = User.select(User.timezone).where(User.id == delivery.user_id).scalar() or ""
    return zone or app.settings.default_timezone


MAX_BACKOFF_MS = 10 * 60 * 1000
GIVE_UP_AFTER = timedelta(days=2)  # a password reset or an expiry warning is useless by then
# Retried about that long (at most MAX_BACKOFF_MS apart); the last failure settles it.
MAX_RETRIES = int(GIVE_UP_AFTER / timedelta(milliseconds=MAX_BACKOFF_MS))


def _settle(delivery_id: int, status: str, error: str, *, was: str) -> int:
    """Move a delivery out of ``was`` for good (``unconfirmed`` or ``failed``); 1 if it moved."""
    return (
        EmailDelivery.update(status=status, last_error=error, touched_at=utcnow())
        .where((EmailDelivery.id == delivery_id) & (EmailDelivery.status == was))
        .execute()
    )


@task(max_retries=MAX_RETRIES, min_backoff=2000, max_backoff=MAX_BACKOFF_MS)
def deliver_email(app, delivery_id: int) -> None:
    """Send one email at most once: ``sending`` is committed before it goes to the mail server.

    A failure we are told about (SMTP down, refused) puts it back to ``pending``
    and the task retries, for ``GIVE_UP_AFTER``; then it is ``failed``. A run that
    finds it ``sending`` follows a worker killed while handing it over: the server
    may have it, so it is not sent again but marked ``unconfirmed`` (and logged)
    for a person to check.

    A message the broker lost is sent again by the outbox's sweep (OPS-6,
    ``tasks.redeliver_after``), like any task's: this plugin has no sweep of its own.
    The SMTP-level state above is what stays here: the outbox knows a run
    happened, only this row knows whether the mail server may have the email.
    """
    delivery = EmailDelivery.get_or_none(EmailDelivery.id == delivery_id)
    if delivery is None or delivery.status in ("sent", "unconfirmed", "failed"):
        return  # a redelivered message: already settled, send nothing twice
    if delivery.status == "sending":
        log.warning(
            "email %s (%s) was being sent when its worker died: not sending it again",
            delivery.id,
            delivery.kind,
        )
        _settle(delivery.id, "unconfirmed", "worker died while sending", was="sending")
        return
    if delivery.created_at < utcnow() - GIVE_UP_AFTER:  # e.g. sent again after a long outage
        _give_up(delivery, f"not delivered within {GIVE_UP_AFTER.days} days")
        return
    subject, text, html = render(app, delivery)
    msg = mail.build_message(
        app.settings.mail.sender,
        delivery.address,
        subject,
        text,
        html,
        message_id=mail.stable_message_id(
            app.settings.mail.sender, f"{delivery.id}:{delivery.key}"
        ),
    )
    claimed = (
        EmailDelivery.update(status="sending", touched_at=utcnow())
        .where((EmailDelivery.id == delivery.id) & (EmailDelivery.status == delivery.status))
        .execute()
    )
    if not claimed:
        return  # another run has it
    try:
        mail.send(app.settings, msg)
    except Exception as exc:
        (
            EmailDelivery.update(
                status=delivery.status,
                attempts=EmailDelivery.attempts + 1,
                last_error=str(exc)[:500],
                touched_at=utcnow(),
            )
            .where(EmailDelivery.id == delivery.id)
            .execute()
        )
        if app.tasks.is_last_attempt():
            _give_up(delivery, f"{exc}"[:300])
            return
        raise  # dramatiq retries with backoff
    (
        EmailDelivery.update(status="sent", sent_at=utcnow(), attempts=EmailDelivery.attempts + 1)
        .where(EmailDelivery.id == delivery.id)
        .execute()
    )


def _give_up(delivery: EmailDelivery, error: str) -> None:
    if _settle(delivery.id, "failed", error, was=delivery.status):
        log.error("email %s (%s) gave up: %s", delivery.id, delivery.kind, error)
