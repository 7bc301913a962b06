"""Service tokens (INT-1): random, shown once, stored hashed (``engine.security.token_hash``,
as customer API keys are), scoped, expiring, revocable, with the time they were last used.

Tokens look like ``pst_<43 random characters>`` (keys of customers start ``ptk_``), so
scanners and people can tell the two apart.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from engine import audit
from engine.db import utcnow
from engine.errors import Problem
from engine.i18n import N_
from engine.models import StaffUser
from engine.security import new_token, token_hash
from plugins.operator.models import ServiceToken

TOKEN_PREFIX = "pst_"
#: What a token may do. ``read``: every GET of the operator API; each ``*:write`` scope the
#: writes of its objects (``catalogue:write``: products; ``balances:write``: buckets;
#: ``billing:write``: invoices, transactions, payments pushed in, INT-4; ``webhooks:write``:
#: webhook endpoints and replays, INT-6).
SCOPES = (
    "read",
    "customers:write",
    "services:write",
    "usage:write",
    "billing:write",
    "catalogue:write",
    "balances:write",
    "webhooks:write",
)
MAX_DAYS = 730
MAX_RATE = 1_000_000
#: ``last_used_at`` is written at most this often (not on every request).
TOUCH_EVERY = timedelta(minutes=1)


def create(
    app,
    name: str,
    scopes: list[str],
    expires_at: datetime,
    staff: StaffUser,
    rate_per_minute: int | None = None,
) -> tuple[str, ServiceToken]:
    """A new token made by ``staff`` (recorded); returns (the token, shown once, its row).
    ``rate_per_minute``: its own rate limit (None: ``[operator] token_rate``)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(
            f"unknown scope {', '.join(unknown)}; the scopes are: {', '.join(SCOPES)}"
            if unknown
            else "a token needs a scope"
        )
    if not utcnow() < expires_at <= utcnow() + timedelta(days=MAX_DAYS):
        raise ValueError(f"the expiry must be in the future and within {MAX_DAYS} days")
    if rate_per_minute is not None and not 1 <= rate_per_minute <= MAX_RATE:
        raise ValueError(f"the rate must be between 1 and {MAX_RATE} requests a minute")
    token = TOKEN_PREFIX + new_token(32)
    with app.database.atomic():
        row = ServiceToken.create(
            name=name,
            prefix=token[:12],
            token_hash=token_hash(token),
            scopes=" ".join(s for s in SCOPES if s in scopes),
            created_by=staff.id,
            expires_at=expires_at,
            rate_per_minute=rate_per_minute,
        )
        audit.record_system(
            app,
            "service_token.created",
            f"service_token:{row.id}",
            {
                "service_token": describe(row),
                "by": staff.email,
                "scopes": row.scopes,
                "rate_per_minute": rate_per_minute,
            },
            staff_id=staff.id,
        )
    return token, row


def resolve(token: str, ip: str) -> ServiceToken:
    """The live token row for ``token``; 401 for an unknown, expired or revoked one."""
    row = ServiceToken.get_or_none(ServiceToken.token_hash == token_hash(token))
    if row is None:
        raise Problem(
            401,
            N_("Unknown service token"),
            N_("Check the token, or ask an administrator for a new one (portico token create)."),
            type="invalid-token",
        )
    now = utcnow()
    state = row.state(now)
    if state != "active":
        raise Problem(
            401,
            N_("This service token is %(state)s", state=state),
            N_("Ask an administrator for a new one (portico token create)."),
            type=f"{state}-token",
        )
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        ServiceToken.update(last_used_at=now, last_used_ip=ip).where(
            ServiceToken.id == row.id
        ).execute()
    return row


def revoke(app, row: ServiceToken, staff: StaffUser) -> bool:
    """Revoke at once (audited); False if it was revoked already."""
    with app.database.atomic():
        done = bool(
            ServiceToken.update(revoked_at=utcnow())
            .where((ServiceToken.id == row.id) & ServiceToken.revoked_at.is_null())
            .execute()
        )
        if done:
            audit.record_system(
                app,
                "service_token.revoked",
                f"service_token:{row.id}",
                {"service_token": describe(row), "by": staff.email},
                staff_id=staff.id,
            )
    return done


def describe(row: ServiceToken) -> dict:
    """How audit events name a token: its id and name (never the token)."""
    return {"id": row.id, "name": row.name}
