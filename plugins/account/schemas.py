"""Shapes of the account API and forms (one schema validates both faces)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, available_timezones

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate

from engine.api import PageQuery, page_schema
from engine.core.schemas import ContactOut, SiteOut
from engine.i18n import LOCALES, N_
from plugins.account.activity import KINDS

#: Fields a customer can see but never set (ACCT-2, LIM-1, LIM-2); the answer says where to go.
PROTECTED = {
    "id": N_("Your customer ID never changes."),
    "customer_id": N_("Your customer ID never changes."),
    "number": N_("Your customer ID never changes."),
    "kind": N_("Only support can change the customer type."),
    "customer_type": N_("Only support can change the customer type."),
    "name": N_("Contact support to change the account name."),
    "created_at": N_("The creation date is read-only."),
    "email": N_(
        "Change your email address with POST /account/email: the new address must confirm it."
    ),
    "password": N_("Change your password with POST /account/password."),
    "balance": N_("Balances change only through top-ups and usage."),
    "balances": N_("Balances change only through top-ups and usage."),
    "status": N_("Only support can change the account status."),
    "api_access": N_("Contact support to enable API access."),
    "is_primary": N_("Only support can change the primary contact."),
    "contacts": N_("Contact support to change contacts."),
    "sites": N_("Contact support to change sites."),
}


def normalise_phone(value: str, region: str = "GB") -> str:
    """E.164 form of a phone number, or ValidationError with a reason."""
    value = (value or "").strip()
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise ValidationError(
            N_("Enter a phone number like 07700 900123 or +44 7700 900123.")
        ) from None
    if not phonenumbers.is_possible_number(number):
        raise ValidationError(N_("This is not a valid phone number."))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class PhoneField(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        return normalise_phone(super()._deserialize(value, attr, data, **kwargs))


class EmailField(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs).strip()
        try:
            return validate_email(value, check_deliverability=False).normalized.lower()
        except EmailNotValidError as exc:
            raise ValidationError(
                N_("Enter a valid email address (%(reason)s).", reason=str(exc))
            ) from None


def _timezone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(N_("Choose a time zone such as Europe/London."))
    ZoneInfo(value)


class AccountPatch(Schema):
    """What a customer may change on ``PATCH /account``; everything else is refused by name."""

    class Meta:
        unknown = RAISE

    phone = PhoneField(
        validate=validate.Length(max=32),
        metadata={
            "description": "any common format; stored as E.164 (+447700900123); empty removes it"
        },
    )
    locale = fields.String(validate=validate.OneOf(LOCALES))
    timezone = fields.String(validate=_timezone)

    @pre_load
    def _protected(self, data, **kwargs):
        if isinstance(data, dict):
            refused = {k: [PROTECTED[k]] for k in data if k in PROTECTED}
            if refused:
                raise ValidationError(refused)
        return data


class PhoneForm(Schema):
    phone = PhoneField(load_default="", validate=validate.Length(max=32))


class EmailChangeBody(Schema):
    email = EmailField(
        required=True,
        validate=validate.Length(max=254),
        error_messages={"required": N_("Enter the new email address.")},
    )
    password = fields.String(
        required=True,
        validate=validate.Length(max=4096),
        error_messages={"required": N_("Enter your password.")},
    )


class TokenBody(Schema):
    token = fields.String(required=True, validate=validate.Length(max=200))


class PasswordChangeBody(Schema):
    current_password = fields.String(
        required=True,
        validate=validate.Length(max=4096),
        error_messages={"required": N_("Enter your current password.")},
    )
    new_password = fields.String(
        required=True,
        validate=validate.Length(max=4096),
        error_messages={"required": N_("Choose a new password.")},
    )
    end_other_sessions = fields.Boolean(
        load_default=True, metadata={"description": "sign out every other session (default true)"}
    )


class PasswordChangeForm(PasswordChangeBody):
    new_password_confirm = fields.String(load_default="")
    end_other_sessions = fields.Boolean(load_default=False)


# -- answers -------------------------------------------------------------------


class CustomerOut(Schema):
    id = fields.Integer()
    number = fields.String(metadata={"description": "the customer ID to quote to support"})
    name = fields.String()
    kind = fields.String(metadata={"enum": ["individual", "business"]})
    created_at = fields.DateTime()
    api_access = fields.Boolean()


class AccountOut(Schema):
    customer = fields.Nested(CustomerOut, metadata={"description": "read-only"})
    contact = fields.Nested(ContactOut, metadata={"description": "you; read-only but phone"})
    email = fields.String()
    email_verified = fields.Boolean()
    pending_email = fields.String(allow_none=True)
    phone = fields.String()
    locale = fields.String()
    timezone = fields.String()
    two_factor = fields.Boolean()
    read_only = fields.List(fields.String(), metadata={"description": "fields you cannot change"})


class MeOut(Schema):
    user_id = fields.Integer()
    email = fields.String()
    customer = fields.Nested(CustomerOut)
    contact = fields.Nested(ContactOut)
    via = fields.String(metadata={"enum": ["session", "token", "api_key"]})
    scopes = fields.List(fields.String())
    impersonated = fields.Boolean()
    impersonator = fields.String(allow_none=True)
    two_factor = fields.Boolean()
    access = fields.String(
        metadata={
            "enum": ["primary", "manager", "member"],
            "description": "your role on the account (ACCT-7)",
        }
    )


class ActivityQuery(PageQuery):
    """``?kind=``: one kind of event (ACCT-5); ``limit`` and ``cursor`` as every list."""

    kind = fields.String(
        load_default=None,
        validate=validate.OneOf(list(KINDS)),
        metadata={"description": "only this kind: " + ", ".join(KINDS)},
    )


class ActivityOut(Schema):
    id = fields.Integer()
    action = fields.String(metadata={"description": "the event's id, for programs"})
    kind = fields.String(allow_none=True, metadata={"description": "its kind: " + ", ".join(KINDS)})
    description = fields.String(
        metadata={"description": "the event as a sentence, in your language (ACCT-5)"}
    )
    target = fields.String()
    data = fields.Dict()
    at = fields.DateTime()
    actor = fields.String(metadata={"description": "who did it"})
    impersonated = fields.Boolean()
    staff = fields.String(allow_none=True, metadata={"description": "the staff member, if any"})
    ip = fields.String()
    device = fields.String(
        allow_none=True,
        metadata={"description": 'the browser and device by name ("Chrome on Android")'},
    )
    user_agent = fields.String(metadata={"description": "the User-Agent as sent, for programs"})


class ContactLoginOut(Schema):
    email = fields.String()
    active = fields.Boolean()
    two_factor = fields.Boolean()


class AccountContactOut(ContactOut):
    login = fields.Nested(
        ContactLoginOut,
        allow_none=True,
        metadata={
            "description": "their portal login: your own, or anyone's for the primary contact and "
            "managers (ACCT-7); null otherwise, or when they have none"
        },
    )


class ContactSignedOut(Schema):
    ended = fields.Integer(metadata={"description": "how many sessions were ended"})


class ManageForm(Schema):
    """``POST /account/contacts/{id}/manage``: grant (true) or take back (false) "manage"."""

    grant = fields.Boolean(required=True)


ContactPage = page_schema(AccountContactOut, "ContactPage")
SitePage = page_schema(SiteOut, "SitePage")
ActivityPage = page_schema(ActivityOut, "ActivityPage")


class OpeningHoursOut(Schema):
    day = fields.String(metadata={"description": "mon, tue, wed, thu, fri, sat or sun"})
    label = fields.String(metadata={"description": "the weekday in the caller's language"})
    hours = fields.String(metadata={"description": "'closed', or ranges such as '08:00-20:00'"})


class HelpArticleOut(Schema):
    title = fields.String()
    url = fields.String(metadata={"description": "https:// or a path on the portal"})


class SupportOut(Schema):
    configured = fields.Boolean(
        metadata={"description": "whether the operator set any way to reach support"}
    )
    phone = fields.String(metadata={"description": "as the operator wrote it; '' when not set"})
    tel = fields.String(metadata={"description": "the tap-to-call link (tel:+442079460000)"})
    email = fields.String()
    chat_url = fields.String()
    hours = fields.String(metadata={"description": "opening hours as free text, if given so"})
    opening_hours = fields.List(
        fields.Nested(OpeningHoursOut),
        metadata={"description": "opening hours per weekday, if given so"},
    )
    articles = fields.List(fields.Nested(HelpArticleOut), metadata={"description": "help articles"})
    customer_number = fields.String(
        allow_none=True, metadata={"description": "quote it when you call (when signed in)"}
    )
    staff_only = fields.List(
        fields.Dict(), metadata={"description": "what only support can do, and why"}
    )


class AccountStatusOut(Schema):
    status = fields.String()
    detail = fields.String()
