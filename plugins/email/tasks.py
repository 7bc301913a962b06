"""Background delivery of one email, rendered in the recipient's language."""
from __future__ import annotations

import logging

from engine import mail
from engine.db import utcnow
from engine.tasks import task
from plugins.email.models import EmailDelivery

log = logging.getLogger("portico.email")


def render(app, delivery: EmailDelivery) -> tuple[str, str, str | None]:
    """(subject, text, html) from ``email/<kind>.txt`` (first line: subject) and ``.html``."""
    values = {"data": delivery.data, "app_url": app.url, "support": app.settings.support}
    theme = app.theme
    text = theme.render_plain(f"email/{delivery.kind}.txt", delivery.locale, **values)
    subject, _, body = text.partition("\n")
    try:
        html = theme.render_plain(f"email/{delivery.kind}.html", delivery.locale, **values)
    except Exception as exc:  # an HTML part is optional
        if type(exc).__name__ != "TemplateNotFound":
            raise
        html = None
    return subject.strip(), body.lstrip("\n"), html


@task(max_retries=20, min_backoff=2000, max_backoff=10 * 60 * 1000)
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
        (EmailDelivery.update(status="unconfirmed", last_error="worker died while sending")
         .where(EmailDelivery.id == delivery.id).execute())
        return
    subject, text, html = render(app, delivery)
    msg = mail.build_message(app.settings.mail.sender, delivery.address, subject, text, html,
                             message_id=f"<delivery-{delivery.id}-{delivery.key[:40]}@portico>")
    claimed = (EmailDelivery.update(status="sending")
               .where((EmailDelivery.id == delivery.id) &
                      (EmailDelivery.status == delivery.status)).execute())
    if not claimed:
        return  # another run has it
    try:
        mail.send(app.settings, msg)
    except Exception as exc:
        (EmailDelivery.update(status=delivery.status, attempts=EmailDelivery.attempts + 1,
                              last_error=str(exc)[:500])
         .where(EmailDelivery.id == delivery.id).execute())
        raise  # dramatiq retries with backoff
    (EmailDelivery.update(status="sent", sent_at=utcnow(), attempts=EmailDelivery.attempts + 1)
     .where(EmailDelivery.id == delivery.id).execute())
