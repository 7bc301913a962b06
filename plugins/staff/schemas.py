"""Shapes of the staff API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from engine.api import Id, PageQuery, money, page_schema
from engine.core.schemas import ContactOut, SiteOut
from engine.i18n import N_


class StaffLoginBody(Schema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=254))
    password = fields.String(required=True, validate=validate.Length(max=4096))
    otp = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=20),
        metadata={
            "description": "the authenticator's current code, or an "
            "unused backup code, when two-step sign-in "
            "is on"
        },
    )


class StaffTwoFactorStatus(Schema):
    enabled = fields.Boolean()
    required = fields.Boolean(metadata={"description": "the operator requires it for staff"})
    backup_codes_left = fields.Integer()


class StaffTwoFactorEnabled(Schema):
    enabled = fields.Boolean()
    backup_codes = fields.List(
        fields.String(), metadata={"description": "ten one-time codes, shown in this answer only"}
    )


class StaffLoginForm(StaffLoginBody):
    next = fields.String(load_default="/staff")


class StaffTokenOut(Schema):
    token = fields.String()
    expires_at = fields.DateTime()
    setup_required = fields.Boolean(
        metadata={
            "description": "two-step sign-in is required and not set up: until it is, the token "
            "reaches only /api/v1/staff/2fa, /2fa/setup, /2fa/enable and sign-out"
        }
    )


class StaffOut(Schema):
    id = fields.Integer()
    email = fields.String()
    name = fields.String()
    permissions = fields.Method("_perms")

    def _perms(self, obj):
        return sorted(obj.permissions.split())


#: The longest search: more than anyone types to find a name, an email or an id.
SEARCH_MAX = 100
SEARCH_TOO_LONG = N_("Type at most 100 characters to search for.")
SEARCH_HELP = (
    "one search box: part of a customer's name or number, or of a contact's email or phone; "
    "part of a service's MSISDN or identifier (07700 900123 finds +447700900123); or exactly "
    "a customer's or service's external id, or an invoice number"
)


def _search_field() -> fields.String:
    return fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=SEARCH_MAX, error=SEARCH_TOO_LONG),
        metadata={"description": SEARCH_HELP},
    )


class CustomerQuery(PageQuery):
    q = _search_field()


class ConsoleQuery(Schema):
    """The console's search box (``/staff?q=``) and its next page."""

    q = _search_field()
    cursor = fields.String(load_default=None, allow_none=True)


class ActivityQuery(Schema):
    """The customer page's activity log: which page (``/staff/customers/{id}?cursor=``)."""

    cursor = fields.String(load_default=None, allow_none=True)


class StaffCustomerOut(Schema):
    id = fields.Integer()
    number = fields.String()
    name = fields.String()
    kind = fields.String()
    api_access = fields.Boolean()
    created_at = fields.DateTime()


class StaffContactOut(ContactOut):
    customer_id = fields.Integer()
    has_login = fields.Boolean()
    user_id = fields.Integer(allow_none=True)


class StaffServiceOut(Schema):
    id = fields.Integer()
    name = fields.String()
    service_type = fields.String()
    identifier = fields.String()
    status = fields.String()
    product = fields.Method("_product")
    created_at = fields.DateTime()
    expires_at = fields.DateTime(allow_none=True)
    renews_at = fields.DateTime(allow_none=True)
    monthly_fee = fields.Method("_fee")
    auto_renew = fields.Boolean()

    def _product(self, obj):
        return {"id": obj.product_id, "code": obj.product.code, "name": obj.product.name}

    def _fee(self, obj):
        return money(obj.monthly_fee, obj.currency)


CustomerPage = page_schema(StaffCustomerOut, "StaffCustomerPage")
ContactPage = page_schema(StaffContactOut, "StaffContactPage")
SitePage = page_schema(SiteOut, "StaffSitePage")
ServicePage = page_schema(StaffServiceOut, "StaffServicePage")


class ImpersonationBody(Schema):
    contact_id = Id(required=True, strict=False)
    reason = fields.String(
        required=True,
        validate=validate.Length(
            min=5,
            max=500,
            error=N_("Give a reason of 5 to 500 characters (it is shown to the customer)."),
        ),
        error_messages={"required": N_("Give a reason (it is shown to the customer).")},
    )


class ImpersonationOut(Schema):
    id = fields.Integer()
    url = fields.String(
        allow_none=True,
        metadata={
            "description": "one-time; open it in a new tab within 2 minutes (null once ended)"
        },
    )
    staff_id = fields.Integer()
    contact_id = fields.Integer()
    customer_id = fields.Integer()
    user_id = fields.Integer()
    reason = fields.String()
    created_at = fields.DateTime()
    link_expires_at = fields.DateTime()
    opened_at = fields.DateTime(allow_none=True)
    status = fields.String(metadata={"enum": ["pending", "active", "ended", "expired"]})


ImpersonationPage = page_schema(ImpersonationOut, "ImpersonationPage")
