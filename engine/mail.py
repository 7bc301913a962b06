"""Sending one email: SMTP in production, ``.eml`` files in ``<data dir>/mail/`` for the demo."""

from __future__ import annotations

import hashlib
import smtplib
import ssl
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path


def build_message(
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    message_id: str | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id or make_msgid(domain=mail_domain(sender))
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg


def mail_domain(sender: str) -> str:
    """The domain of the configured sender ("Shop <no-reply@mail.example.com>"): the mail's."""
    domain = parseaddr(sender)[1].rpartition("@")[2].strip().lower()
    return domain or "localhost"


def stable_message_id(sender: str, key: str) -> str:
    """A standard ``Message-ID`` (``<left@domain>``, like ``make_msgid``) that is the same
    for every retry of one email: the left part is a hash of ``key``, so no character of the
    key (a ``:``, a space) reaches the header; the domain is the sender's."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}.portico@{mail_domain(sender)}>"


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
