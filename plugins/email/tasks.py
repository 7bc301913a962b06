"""Background delivery of one email, rendered in the recipient's language."""
from __future__ import annotations

from engine import mail
from engine.db import utcnow
from engine.tasks import task
from plugins.email.models import EmailDelivery


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
    delivery = EmailDelivery.get_or_none(EmailDelivery.id == delivery_id)
    if delivery is None or delivery.status == "sent":
        return  # a redelivered message: already sent, send nothing twice
    subject, text, html = render(app, delivery)
    msg = mail.build_message(app.settings.mail.sender, delivery.address, subject, text, html,
                             message_id=f"<delivery-{delivery.id}-{delivery.key[:40]}@portico>")
    try:
        mail.send(app.settings, msg)
    except Exception as exc:
        (EmailDelivery.update(attempts=EmailDelivery.attempts + 1, last_error=str(exc)[:500])
         .where(EmailDelivery.id == delivery.id).execute())
        raise  # dramatiq retries with backoff
    (EmailDelivery.update(status="sent", sent_at=utcnow(), attempts=EmailDelivery.attempts + 1)
     .where(EmailDelivery.id == delivery.id).execute())
