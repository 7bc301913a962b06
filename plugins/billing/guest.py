"""Guest payment links (BILL-6): pay one invoice, for the amount the server holds, without signing in.

A link is ``<base>/pay/<token>``; the token is random and signed with the
secret key over the link's invoice and expiry, and only its SHA-256 is stored,
so the database alone cannot produce a working link. A link expires, can be
revoked, and pays only its invoice. Opening it swaps the token for an HttpOnly
cookie and redirects to ``/pay``, so the token leaves the address bar (no
``Referer`` leak, with ``Referrer-Policy: no-referrer`` as well), and the
``redact_tokens`` filter keeps it out of every log.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from engine.audit import record
from engine.db import utcnow
from engine.errors import Problem
from engine.i18n import N_
from engine.security import new_token, sign, signed, token_hash
from plugins.billing.models import GuestPayLink, Invoice

COOKIE = "portico_pay"
TOKEN_RE = re.compile(r"/pay/[A-Za-z0-9_.\-]{20,}")


def _message(nonce: str, invoice_id: int, expires_ts: int) -> str:
    return f"guest-pay:{nonce}:{invoice_id}:{expires_ts}"


def create_link(
    app, ctx, invoice: Invoice, days: int | None = None, created_by: str = ""
) -> tuple[GuestPayLink, str]:
    """A new link for ``invoice``; returns (row, URL). The URL is shown once and never stored."""
    if not invoice.is_open:
        raise Problem(409, N_("This invoice is already paid"), type="invoice-paid")
    days = days or app.settings.plugin("billing").guest_link_days
    expires = (utcnow() + timedelta(days=days)).replace(microsecond=0)
    nonce = new_token(24)
    message = _message(nonce, invoice.id, int(expires.timestamp()))
    token = f"{nonce}.{sign(app.settings.secret_key, message)[:32]}"
    link = GuestPayLink.create(
        invoice=invoice.id, token_hash=token_hash(token), expires_at=expires, created_by=created_by
    )
    record(
        ctx,
        "payment_link.created",
        f"invoice:{invoice.id}",
        {"link": link.id, "expires_at": expires.isoformat()},
        customer_id=invoice.customer_id,
    )
    return link, app.url(f"/pay/{token}")


def revoke_link(app, ctx, link: GuestPayLink) -> GuestPayLink:
    if link.revoked_at is None:
        link.revoked_at = utcnow()
        link.save(only=[GuestPayLink.revoked_at])
        record(
            ctx,
            "payment_link.revoked",
            f"invoice:{link.invoice_id}",
            {"link": link.id},
            customer_id=link.invoice.customer_id,
        )
    return link


def resolve(app, token: str | None) -> GuestPayLink:
    """The live link a token names, or 404 (expired, revoked, tampered or unknown alike)."""
    gone = Problem(
        404,
        N_("This payment link is not valid"),
        N_("It may have expired or been withdrawn. Ask for a new link, or sign in to pay."),
        type="payment-link-invalid",
    )
    if not token or "." not in token or len(token) > 200:
        raise gone
    link = GuestPayLink.get_or_none(GuestPayLink.token_hash == token_hash(token))
    if link is None or link.state() != "active":
        raise gone
    nonce, _, signature = token.partition(".")
    # Signed under any of the secret keys (SEC-6): a link sent before a rotation still pays.
    message = _message(nonce, link.invoice_id, int(link.expires_at.timestamp()))
    if not signed(app.settings.secret_keys, message, signature, 32):
        raise gone
    return link


def from_cookie(app, req) -> GuestPayLink:
    return resolve(app, req.cookies.get(COOKIE))


def set_cookie(app, resp, token: str, link: GuestPayLink) -> None:
    max_age = max(60, int((link.expires_at - utcnow()).total_seconds()))
    resp.set_cookie(
        COOKIE,
        token,
        path="/pay",
        http_only=True,
        same_site="Strict",
        max_age=min(max_age, 60 * 60 * 2),
        secure=app.settings.security.cookie_secure,
    )


def no_referrer(resp) -> None:
    """Guest pages send no Referer anywhere and are never cached."""
    resp.set_header("Referrer-Policy", "no-referrer")
    resp.set_header("Cache-Control", "no-store")


class RedactTokens(logging.Filter):
    """Replace guest payment tokens in log records (access logs, error logs) with ``/pay/***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "/pay/" in record.msg:
            record.msg = TOKEN_RE.sub("/pay/***", record.msg)
        if record.args:
            if isinstance(record.args, dict):
                record.args = {k: self._clean(v) for k, v in record.args.items()}
            else:
                record.args = tuple(self._clean(a) for a in record.args)
        return True

    @staticmethod
    def _clean(value):
        if isinstance(value, str) and "/pay/" in value:
            return TOKEN_RE.sub("/pay/***", value)
        return value


#: Loggers that may see a request path: gunicorn's access and error logs, ours, Falcon's.
LOGGERS = ("gunicorn.access", "gunicorn.error", "portico", "portico.errors", "falcon")


def redact_tokens() -> None:
    """Install ``RedactTokens`` on the loggers that could see a guest URL (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactTokens) for f in handler.filters):
            handler.addFilter(RedactTokens())
