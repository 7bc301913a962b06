"""Sending one email: SMTP in production, ``.eml`` files in ``<data dir>/mail/`` for the demo."""
from __future__ import annotations

import smtplib
import ssl
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path


def build_message(sender: str, to: str, subject: str, text: str, html: str | None = None,
                  message_id: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id or make_msgid(domain="portico.local")
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg


def send(settings, msg: EmailMessage) -> None:
    """Deliver ``msg`` with the configured backend; raises on failure so the task retries."""
    mail = settings.mail
    if mail.backend == "file":
        folder = Path(settings.data_dir) / "mail"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        tmp = folder / (name + ".tmp")
        tmp.write_bytes(bytes(msg))
        tmp.rename(folder / name)  # readers never see a half-written file
        return
    smtp_cls = smtplib.SMTP_SSL if mail.smtp_ssl else smtplib.SMTP
    with smtp_cls(mail.smtp_host, mail.smtp_port, timeout=20) as smtp:
        if mail.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if mail.smtp_user:
            smtp.login(mail.smtp_user, mail.smtp_password)
        smtp.send_message(msg)
