"""``portico check --connect``: prove that every service the configuration names answers (OPS-2).

Each probe returns None when the service answers, else one line saying where and why;
secrets never appear (URLs are masked).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from typing import TYPE_CHECKING, Callable

from engine import db, faults

if TYPE_CHECKING:
    from engine.app import Portico

Probe = Callable[["Portico"], None]


def probe_database(app: Portico) -> None:
    with db.connection():
        db.database.execute_sql("SELECT 1")


def probe_broker(app: Portico) -> None:
    app.tasks.ping()


def probe_smtp(app: Portico) -> None:
    """Connect, say EHLO, STARTTLS and log in as a real send would; send nothing."""
    mail = app.settings.mail
    smtp_cls = smtplib.SMTP_SSL if mail.smtp_ssl else smtplib.SMTP
    with smtp_cls(mail.smtp_host, mail.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        if mail.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if mail.smtp_user:
            smtp.login(mail.smtp_user, mail.smtp_password)
        code, _ = smtp.noop()
        if code != 250:
            raise smtplib.SMTPResponseException(code, "NOOP refused")


def probes(app: Portico) -> list[tuple[str, str | None, Probe]]:
    """(name, where, probe) for each service this configuration uses (a provider says where
    itself)."""
    settings = app.settings
    out: list[tuple[str, str | None, Probe]] = [
        ("database", faults.where(settings.database_url), probe_database),
        ("broker", faults.where(settings.broker_url), probe_broker),
    ]
    if settings.mail.backend == "smtp":
        out.append(
            ("SMTP server", f"{settings.mail.smtp_host}:{settings.mail.smtp_port}", probe_smtp)
        )
    for provider_id, provider in sorted(app.providers.items()):
        out.append((f"payment provider '{provider_id}'", None, provider.ping))
    return out


def connect(app: Portico) -> list[tuple[str, str | None]]:
    """Run every probe: [(name and where, None or the problem in one line, naming it)]."""
    from engine.payments import PaymentError

    results: list[tuple[str, str | None]] = []
    for name, where, probe in probes(app):
        try:
            probe(app)
        except PaymentError as exc:
            results.append((name, exc.message))
        except (OSError, smtplib.SMTPException, socket.timeout) as exc:
            results.append(
                (
                    name,
                    f"{name} at {where} does not answer: "
                    f"{faults.reason(exc) or type(exc).__name__}",
                )
            )
        except Exception as exc:
            if not faults.is_unreachable(exc):
                raise
            url = app.settings.database_url if name == "database" else app.settings.broker_url
            results.append((name, faults.describe(name, url, exc)))
        else:
            results.append((f"{name} at {where}" if where else name, None))
    return results
