"""The ``[identity]`` settings table: rate limits, in the ``limits`` notation ("10/minute")."""

from __future__ import annotations

import limits
from marshmallow import Schema, ValidationError, fields


def _rate(value: str) -> None:
    try:
        limits.parse(value)
    except ValueError:
        raise ValidationError("write a rate like '10/minute' or '5 per hour'") from None


def _field(default: str, what: str) -> fields.String:
    return fields.String(load_default=default, validate=_rate, metadata={"description": what})


class IdentitySettings(Schema):
    login_rate = _field("30/minute", "sign-in attempts per client address")
    login_account_rate = _field("10/minute", "sign-in attempts per email address")
    reset_rate = _field("5/hour", "password reset requests per email and per address")
    otp_rate = _field("10/5 minutes", "2FA codes tried per user")
    api_key_rate = _field("10/hour", "API keys generated per customer")
