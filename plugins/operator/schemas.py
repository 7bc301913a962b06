"""Shapes of the operator API (INT-1). Every object is addressed by the operator's
``external_id``; a ``PUT`` sends the required fields each time, and fields it leaves out
keep their value (or take their default when the object is new)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from engine.api import AwareDateTime, PageQuery, page_schema
from engine.i18n import N_
from engine.models import CUSTOMER_KINDS, EXTERNAL_ID_MAX, SERVICE_STATUSES, SERVICE_TYPES

#: An external id: what the operator's systems call the object. Any printable text but "/"
#: (it is a path segment), at most ``EXTERNAL_ID_MAX`` characters. ``\Z``, as ``$`` would let
#: a last newline by.
EXTERNAL_ID = validate.And(
    validate.Length(1, EXTERNAL_ID_MAX),
    validate.Regexp(r"^[^/\x00-\x1f\x7f]+\Z", error=N_("Any text but '/' and control characters.")),
)


def ExternalId(**kwargs) -> fields.String:  # noqa: N802 - a field type
    kwargs.setdefault("validate", EXTERNAL_ID)
    return fields.String(**kwargs)


def text(low: int, high: int, example: str | None = None, **kwargs) -> fields.String:
    metadata = {**kwargs.pop("metadata", {}), **({"example": example} if example else {})}
    return fields.String(validate=validate.Length(low, high), metadata=metadata, **kwargs)


# -- in -------------------------------------------------------------------------------


class OperatorCustomerIn(Schema):
    name = text(1, 200, "Bob's Bikes Ltd", required=True)
    kind = fields.String(validate=validate.OneOf(CUSTOMER_KINDS), metadata={"example": "business"})
    number = text(
        1,
        20,
        "C-200001",
        metadata={
            "description": "the number the customer quotes to support; set on create only "
            "(Portico assigns one if left out)"
        },
    )


class OperatorContactIn(Schema):
    customer_external_id = ExternalId(required=True, metadata={"example": "ACC-1001"})
    first_name = text(1, 100, "Bob", required=True)
    last_name = text(0, 100, "Baker")
    email = fields.Email(
        required=True, validate=validate.Length(max=254), metadata={"example": "bob@example.com"}
    )
    phone = text(0, 32, "+44 7700 900456")
    role = text(0, 50, "Accounts")
    is_primary = fields.Boolean(
        metadata={"description": "the account's primary contact; the others stop being primary"}
    )
    portal_access = fields.Boolean(
        metadata={
            "description": "true: invite this contact to the portal (INT-2) unless they have "
            "a login or a live invitation; false: revoke a pending invitation"
        }
    )


class OperatorSiteIn(Schema):
    customer_external_id = ExternalId(required=True, metadata={"example": "ACC-1001"})
    label = text(0, 100, "Workshop")
    line1 = text(1, 200, "1 High Street", required=True)
    line2 = text(0, 200)
    city = text(1, 100, "London", required=True)
    postcode = text(0, 20, "N1 1AA")
    country = fields.String(
        validate=validate.Regexp(
            r"^[A-Z]{2}\Z", error=N_("Two capital letters (ISO 3166-1 alpha-2).")
        ),
        metadata={"example": "GB"},
    )


class OperatorServiceIn(Schema):
    customer_external_id = ExternalId(required=True, metadata={"example": "ACC-1001"})
    product = text(
        1,
        50,
        "mobile-20gb",
        metadata={"description": "the product's code; required when the service is new"},
    )
    site_external_id = ExternalId(allow_none=True, metadata={"example": None})
    name = text(1, 200, "Mobile - +44 7700 900123", required=True)
    identifier = text(0, 100, "+447700900123", metadata={"description": "MSISDN, line id, ..."})
    service_type = fields.String(
        validate=validate.OneOf(SERVICE_TYPES), metadata={"description": "default: the product's"}
    )
    status = fields.String(
        validate=validate.OneOf(SERVICE_STATUSES),
        metadata={
            "example": "active",
            "description": "`suspended` suspends, `active` resumes, "
            "`cancelled` cancels, `expired` ends; an ended service does not start again (409)",
        },
    )
    suspended_reason = text(0, 200, "")
    renews_at = AwareDateTime(allow_none=True)
    expires_at = AwareDateTime(allow_none=True)
    auto_renew = fields.Boolean()


class OperatorListQuery(PageQuery):
    updated_since = AwareDateTime(
        metadata={
            "description": "only objects changed at or after this time (ISO 8601): pass the time "
            "your previous sync started"
        }
    )
    customer_external_id = ExternalId(metadata={"description": "only this customer's"})


# -- out ------------------------------------------------------------------------------


class OperatorSynced(Schema):
    external_id = fields.String(
        allow_none=True,
        metadata={"description": "the operator's id; null for objects made only in Portico"},
    )
    updated_at = fields.DateTime()
    change = fields.String(
        metadata={
            "enum": ["created", "updated", "unchanged"],
            "description": "what a PUT did (PUT answers only)",
        }
    )


class OperatorOfCustomer(OperatorSynced):
    customer_external_id = fields.Function(lambda row: row.customer.external_id, allow_none=True)


class OperatorCustomerOut(OperatorSynced):
    number = fields.String()
    name = fields.String()
    kind = fields.String()
    created_at = fields.DateTime()


def _portal_state(contact) -> str:
    from plugins.operator import invitations  # lazily: it imports the models

    return invitations.portal_state(contact)


class OperatorContactOut(OperatorOfCustomer):
    first_name = fields.String()
    last_name = fields.String()
    email = fields.String()
    phone = fields.String()
    role = fields.String()
    is_primary = fields.Boolean()
    portal = fields.Function(
        lambda row: _portal_state(row),
        metadata={"description": "active (has a login), invited (a live invitation) or none"},
    )


class OperatorSiteOut(OperatorOfCustomer):
    label = fields.String()
    line1 = fields.String()
    line2 = fields.String()
    city = fields.String()
    postcode = fields.String()
    country = fields.String()


class OperatorServiceOut(OperatorOfCustomer):
    product = fields.Function(lambda row: row.product.code)
    site_external_id = fields.Function(
        lambda row: row.site.external_id if row.site_id else None, allow_none=True
    )
    name = fields.String()
    identifier = fields.String()
    service_type = fields.String()
    status = fields.String()
    suspended_reason = fields.String()
    renews_at = fields.DateTime(allow_none=True)
    expires_at = fields.DateTime(allow_none=True)
    auto_renew = fields.Boolean()


CustomerPage = page_schema(OperatorCustomerOut, "OperatorCustomerPage")
ContactPage = page_schema(OperatorContactOut, "OperatorContactPage")
SitePage = page_schema(OperatorSiteOut, "OperatorSitePage")
ServicePage = page_schema(OperatorServiceOut, "OperatorServicePage")


class InvitationForm(Schema):
    """The invitation page's form (INT-2): the password twice, and 2FA next if ticked."""

    token = fields.String(required=True, validate=validate.Length(max=200))
    password = fields.String(
        required=True,
        validate=validate.Length(max=4096),
        error_messages={"required": N_("Choose a password.")},
    )
    password_confirm = fields.String(load_default="", validate=validate.Length(max=4096))
    setup_2fa = fields.Boolean(load_default=False, truthy={"on", "1", "true"})


class InvitationOut(Schema):
    status = fields.String(metadata={"example": "sent"})
    expires_at = AwareDateTime()
