"""Background delivery of one email, rendered in the recipient's language, and the sweep
that finds emails whose queue message was lost."""
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
        zone = (User.select(User.timezone).where(User.id == delivery.user_id)
                .scalar() or "")
    return zone or app.settings.default_timezone


MAX_BACKOFF_MS = 10 * 60 * 1000
# A pending email is touched at every try, and deliver_email retries at least every
# MAX_BACKOFF_MS: one untouched for longer than this has no message left anywhere.
STALLED_AFTER = timedelta(minutes=30)  # 10 minutes of backoff, and a queue that may be busy
GIVE_UP_AFTER = timedelta(days=2)  # a password reset or an expiry warning is useless by then


def _settle(delivery_id: int, status: str, error: str, *, was: str) -> int:
    """Move a delivery out of ``was`` for good (``unconfirmed`` or ``failed``); 1 if it moved."""
    return (EmailDelivery.update(status=status, last_error=error, touched_at=utcnow())
            .where((EmailDelivery.id == delivery_id) & (EmailDelivery.status == was)).execute())


@task(max_retries=20, min_backoff=2000, max_backoff=MAX_BACKOFF_MS)
def deliver_email(app, delivery_id: int) -> None:
    """Send one email at most once: ``sending`` is committed before it goes to the mail server.

    A failure we are told about (SMTP down, refused) puts it back to ``pending``
    and the task retries. A run that finds it ``sending`` follows a worker killed
    while handing it over: the server may have it, so it is not sent again but
    marked ``unconfirmed`` (and logged) for a person to check.
    """
    delivery = EmailDelivery.get_or_none(EmailDelivery.id == delivery_id)
    if delivery is None or delivery.status in ("sent", "unconfirmed"):
        return  # a redelivered message: already sent, send nothing twice
    if delivery.status == "sending":
        log.warning("email %s (%s) was being sent when its worker died: not sending it again",
                    delivery.id, delivery.kind)
        _settle(delivery.id, "unconfirmed", "worker died while sending", was="sending")
        return
    subject, text, html = render(app, delivery)
    msg = mail.build_message(app.settings.mail.sender, delivery.address, subject, text, html,
                             message_id=mail.stable_message_id(
                                 app.settings.mail.sender, f"{delivery.id}:{delivery.key}"))
    claimed = (EmailDelivery.update(status="sending", touched_at=utcnow())
               .where((EmailDelivery.id == delivery.id) &
                      (EmailDelivery.status == delivery.status)).execute())
    if not claimed:
        return  # another run has it
    try:
        mail.send(app.settings, msg)
    except Exception as exc:
        (EmailDelivery.update(status=delivery.status, attempts=EmailDelivery.attempts + 1,
                              last_error=str(exc)[:500], touched_at=utcnow())
         .where(EmailDelivery.id == delivery.id).execute())
        raise  # dramatiq retries with backoff
    (EmailDelivery.update(status="sent", sent_at=utcnow(), attempts=EmailDelivery.attempts + 1)
     .where(EmailDelivery.id == delivery.id).execute())


@task(periodic="*/5 * * * *")
def resend_stalled_emails(app) -> dict:
    """Enqueue again every email whose queue message was lost; settle those that cannot go.

    The outbox guarantees the broker received each message, not that it kept it:
    a Redis without ``appendonly`` restarts empty, and dramatiq drops a message
    after its last retry. Such an email stays ``pending`` (or ``sending``, when
    its worker died too) and nothing touches it again. Found here:

    - ``pending``, untouched for ``STALLED_AFTER``: enqueued again, once (touching
      it is the claim, so two sweeps do not both enqueue it);
    - ``pending`` for ``GIVE_UP_AFTER`` since it was created: ``failed``;
    - ``sending``, untouched for ``STALLED_AFTER``: its worker died handing it to
      the mail server, so it may have gone: ``unconfirmed``, as ``deliver_email``
      does, never sent twice.
    Each settled email is logged for a person to check.
    """
    now = utcnow()
    stalled = EmailDelivery.touched_at < now - STALLED_AFTER
    counts = {"resent": 0, "failed": 0, "unconfirmed": 0}
    rows = (EmailDelivery.select(EmailDelivery.id, EmailDelivery.status, EmailDelivery.kind,
                                 EmailDelivery.created_at)
            .where(EmailDelivery.status.in_(("pending", "sending")) & stalled)
            .order_by(EmailDelivery.id).limit(1000))
    for row in list(rows):
        if row.status == "sending":
            if _settle(row.id, "unconfirmed", "worker died while sending; its retry was lost",
                       was="sending"):
                log.warning("email %s (%s): worker died while sending: not sending it again",
                            row.id, row.kind)
                counts["unconfirmed"] += 1
        elif row.created_at < now - GIVE_UP_AFTER:
            if _settle(row.id, "failed", "not delivered within "
                       f"{GIVE_UP_AFTER.days} days", was="pending"):
                log.error("email %s (%s) gave up: not delivered within %s",
                          row.id, row.kind, GIVE_UP_AFTER)
                counts["failed"] += 1
        else:
            with app.database.atomic():
                claimed = (EmailDelivery.update(touched_at=now)
                           .where((EmailDelivery.id == row.id) & (EmailDelivery.status == "pending")
                                  & stalled).execute())
                if claimed:
                    app.tasks.enqueue(deliver_email, row.id)
                    counts["resent"] += claimed
    if counts["resent"]:
        log.warning("enqueued %d stalled email(s) again (was the broker restarted empty?)",
                    counts["resent"])
    return counts
