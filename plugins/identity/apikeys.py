"""Customer API keys (API-1, API-3): random, shown once, stored hashed, scoped, expiring.

Keys look like ``ptk_<43 random characters>`` so scanners and people can tell
them apart from session tokens. They are sent as ``Authorization: Bearer``;
a key in a query string is refused (URLs end up in logs and Referer headers).
"""

from __future__ import annotations

from datetime import timedelta

import falcon

from engine.db import utcnow
from engine.errors import Problem
from engine.i18n import N_
from engine.models import Customer
from engine.security import new_token, token_hash
from plugins.identity.models import ApiKey

KEY_PREFIX = "ptk_"
MAX_DAYS = 730
QUERY_NAMES = frozenset({"api_key", "apikey", "api-key", "access_token", "bearer", "token_key"})
TOUCH_EVERY = timedelta(minutes=1)
KEY_STATES = {
    "expired": N_("This API key has expired"),
    "revoked": N_("This API key is revoked"),
}


def allowed(customer: Customer) -> bool:
    """Business customers, and any customer the operator allows (``customer.api_access``)."""
    return customer.kind == "business" or bool(customer.api_access)


def create(
    customer_id: int, user_id: int, name: str, access: str, expires_at
) -> tuple[str, ApiKey]:
    """A new key; returns (the key, shown once, row)."""
    key = KEY_PREFIX + new_token(32)
    row = ApiKey.create(
        customer=customer_id,
        user=user_id,
        name=name,
        prefix=key[:12],
        key_hash=token_hash(key),
        access=access,
        expires_at=expires_at,
    )
    return key, row


def refuse_in_query(req: falcon.Request) -> None:
    """401 for a key (or something named like one) in the query string."""
    for name, value in req.params.items():
        values = value if isinstance(value, list) else [value]
        if name.lower() in QUERY_NAMES or any(str(v).startswith(KEY_PREFIX) for v in values):
            raise Problem(
                401,
                N_("API keys are not accepted in the URL"),
                N_(
                    "Send the key in the Authorization header: "
                    "'Authorization: Bearer <key>'. Revoke a key that was sent in a URL."
                ),
                type="key-in-url",
            )


def resolve(key: str, ip: str) -> ApiKey:
    """The live key for ``key``; 401 for an unknown, expired or revoked key."""
    row = (
        ApiKey.select(ApiKey, Customer)
        .join(Customer)
        .where(ApiKey.key_hash == token_hash(key))
        .first()
    )
    if row is None:
        raise Problem(
            401,
            N_("Unknown API key"),
            N_("Check the key, or generate a new one."),
            type="invalid-key",
        )
    now = utcnow()
    state = row.state(now)
    if state != "active":
        raise Problem(
            401,
            KEY_STATES.get(state, N_("This API key is not active")),
            N_("Generate a new key under Account → API access."),
            type=f"{state}-key",
        )
    if not allowed(row.customer) or not row.user.is_active:
        raise Problem(
            401,
            N_("API access is not enabled for this account"),
            N_("Contact support to enable API access."),
            type="api-access-disabled",
        )
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        ApiKey.update(last_used_at=now, last_used_ip=ip).where(ApiKey.id == row.id).execute()
    return row


def revoke(row: ApiKey) -> bool:
    return bool(
        ApiKey.update(revoked_at=utcnow())
        .where((ApiKey.id == row.id) & ApiKey.revoked_at.is_null())
        .execute()
    )


def revoke_made_by(user_id: int) -> list[ApiKey]:
    """Revoke every key the login made that still works; returns those keys."""
    now = utcnow()
    live = list(
        ApiKey.select().where(
            (ApiKey.user == user_id) & ApiKey.revoked_at.is_null() & (ApiKey.expires_at > now)
        )
    )
    if live:
        ApiKey.update(revoked_at=now).where(
            ApiKey.id.in_([k.id for k in live]) & ApiKey.revoked_at.is_null()
        ).execute()
    return live


def max_expiry():
    return utcnow() + timedelta(days=MAX_DAYS)
