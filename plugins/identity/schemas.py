"""Shapes of the identity API and forms (the same schemas validate both)."""

from __future__ import annotations

from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates

from engine.api import Id
from engine.db import utcnow
from engine.i18n import N_
from plugins.identity import apikeys

_EMAIL = validate.Email(error=N_("Enter a valid email address."))
Email = lambda **kw: fields.String(  # noqa: E731
    validate=[validate.Length(min=3, max=254), lambda value: _EMAIL(value.strip())],
    metadata={"format": "email"},
    **kw,
)
Password = lambda **kw: fields.String(validate=validate.Length(max=4096), **kw)  # noqa: E731


class LoginBody(Schema):
    email = Email(required=True)
    password = Password(required=True)
    otp = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=20),
        metadata={"description": "TOTP or backup code, when 2FA is on"},
    )


class LoginForm(Schema):
    email = Email(required=True, error_messages={"required": N_("Enter your email address.")})
    password = Password(required=True, error_messages={"required": N_("Enter your password.")})
    next = fields.String(load_default="/")


class OtpForm(Schema):
    otp = fields.String(
        required=True,
        validate=validate.Length(min=6, max=20),
        error_messages={"required": N_("Enter the code from your app.")},
    )


class TokenOut(Schema):
    token = fields.String(metadata={"description": "send as 'Authorization: Bearer <token>'"})
    expires_at = fields.DateTime()
    csrf_token = fields.String(
        metadata={"description": "for cookie-authenticated unsafe requests: send as X-CSRF-Token"}
    )


class ForgotBody(Schema):
    email = Email(required=True, error_messages={"required": N_("Enter your email address.")})


class ResetBody(Schema):
    token = fields.String(required=True, validate=validate.Length(max=200))
    password = Password(required=True, error_messages={"required": N_("Choose a new password.")})


class ResetForm(ResetBody):
    password_confirm = Password(load_default="")


class StatusOut(Schema):
    status = fields.String()
    detail = fields.String()


# -- 2FA ----------------------------------------------------------------------


class TwoFactorStatus(Schema):
    enabled = fields.Boolean()
    backup_codes_left = fields.Integer()
    pending_setup = fields.Boolean()


class TwoFactorSetup(Schema):
    secret = fields.String(metadata={"description": "the key to type in by hand"})
    otpauth_uri = fields.String()
    qr_svg = fields.String(metadata={"description": "the QR code as an SVG data: URI"})


class CodeBody(Schema):
    code = fields.String(
        required=True,
        validate=validate.Length(min=6, max=20),
        error_messages={"required": N_("Enter the code from your app.")},
    )


class PasswordAndCode(Schema):
    password = Password(required=True, error_messages={"required": N_("Enter your password.")})
    code = fields.String(
        required=True,
        validate=validate.Length(min=6, max=20),
        error_messages={"required": N_("Enter a code from your app or a backup code.")},
    )


class BackupCodesOut(Schema):
    backup_codes = fields.List(fields.String())


# -- API keys -----------------------------------------------------------------


class ApiKeyBody(Schema):
    name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=100),
        error_messages={"required": N_("Give the key a name.")},
    )
    access = fields.String(
        load_default="read",
        validate=validate.OneOf(["read", "read_write"], error=N_("Choose read or read_write.")),
    )
    expires_at: fields.Field = fields.DateTime(
        required=True,
        error_messages={  # ApiKeyForm: a Date
            "required": N_("Choose an expiry date."),
            "invalid": N_("Enter a date like 2027-01-31."),
        },
    )

    @validates("expires_at")
    def _future(self, value, **kwargs):
        value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        if value <= utcnow():
            raise ValidationError(N_("Choose a date in the future."))
        if value > apikeys.max_expiry():
            raise ValidationError(N_("Keys live at most %(days)s days.", days=apikeys.MAX_DAYS))

    @post_load
    def _aware(self, data, **kwargs):
        value = data["expires_at"]
        data["expires_at"] = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return data


class ApiKeyForm(ApiKeyBody):
    """The portal form sends a plain date; the key lasts to the end of that day in the
    customer's time zone (``for_zone``), so the list shows the day that was chosen."""

    zone = "UTC"
    expires_at = fields.Date(
        required=True,
        error_messages={
            "required": N_("Choose an expiry date."),
            "invalid": N_("Enter a date like 2027-01-31."),
        },
    )

    @classmethod
    def for_zone(cls, zone: str) -> type[ApiKeyForm]:
        return type(cls.__name__, (cls,), {"zone": zone})

    def _end_of(self, day) -> datetime:
        return datetime.combine(day, time(23, 59, 59), ZoneInfo(self.zone)).astimezone(timezone.utc)

    @validates("expires_at")
    def _future(self, value, **kwargs):
        ApiKeyBody._future(self, self._end_of(value))

    @post_load
    def _aware(self, data, **kwargs):
        data["expires_at"] = self._end_of(data["expires_at"])
        return data


class ApiKeyOut(Schema):
    id = fields.Integer()
    name = fields.String()
    prefix = fields.String(metadata={"description": "the key's first characters"})
    access = fields.String()
    state = fields.Method("_state", metadata={"enum": ["active", "expired", "revoked"]})
    created_at = fields.DateTime()
    expires_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)
    last_used_ip = fields.String()
    owner = fields.Function(
        lambda key: key.user.email, metadata={"description": "the login that made it"}
    )

    def _state(self, obj):
        return obj.state()


class ApiKeyCreated(ApiKeyOut):
    key = fields.String(metadata={"description": "shown this once; store it safely"})


class ApiKeyPage(Schema):
    items = fields.List(fields.Nested(ApiKeyOut))
    next = fields.String(allow_none=True)


class CustomerAccountOut(Schema):
    """One customer account a login speaks for (SUP-2)."""

    id = fields.Integer(metadata={"description": "the customer's id: what switching takes"})
    number = fields.String(metadata={"description": "the customer ID to quote to support"})
    name = fields.String()
    kind = fields.String(metadata={"description": "individual or business"})
    contact_id = fields.Integer(metadata={"description": "your contact on that account"})
    current = fields.Boolean(metadata={"description": "the account this session acts for"})


class CustomerAccountsOut(Schema):
    items = fields.List(fields.Nested(CustomerAccountOut))


class SwitchBody(Schema):
    customer_id = Id(
        required=True,
        strict=False,
        error_messages={"required": N_("Choose an account.")},
        metadata={"description": "one of your accounts' id (GET /api/v1/me/accounts)"},
    )
