"""Top-up and add-on catalogue entries through the operator API (INT-1, issue 17), while
the topups or addons plugin is enabled: ``PUT``/``GET /api/v1/operator/topup-products/
{external_id}`` (and ``addon-products``) and the lists, synced by ``updated_since``.

An entry is offered on every service of its ``service_type``; prices are minor units of
its ``currency``, tax included; ``active`` false retires it (what customers bought keeps
its terms). Its ``code`` is set once: on create, the external id in lower case unless
another is sent."""

from __future__ import annotations


from marshmallow import Schema, fields, validate

from engine.api import Amount, AwareDateTime, PageQuery, page_schema
from engine.i18n import N_
from engine.models import SERVICE_TYPES
from plugins.addons.public import CATEGORIES, AddonProduct, upsert_addon_product
from plugins.operator.resources import _pair
from plugins.operator.schemas import OperatorSynced, text
from engine.upserts import CODE, CODE_RULE
from plugins.topups.public import KINDS, TopupProduct, upsert_topup_product

#: A top-up's quantity: bytes, seconds or messages (a petabyte is 10**15 bytes).
MAX_QUANTITY = 10**15
#: Printable text on one line: a provisioner's id is matched against plugins' ids.
ONE_LINE = validate.Regexp(r"^[^\x00-\x1f\x7f]+\Z", error=N_("Text on one line."))


class _EntryIn(Schema):
    """The fields every catalogue entry has, as the operator's systems send them."""

    name = text(1, 100, "5 GB data", required=True)
    code = fields.String(
        validate=validate.Regexp(CODE.pattern, error=CODE_RULE),
        metadata={
            "example": "data-5gb",
            "description": "what the portal names it by; set on create only (default: the "
            "external id in lower case)",
        },
    )
    service_type = fields.String(
        required=True, validate=validate.OneOf(SERVICE_TYPES), metadata={"example": "mobile"}
    )
    description = text(0, 1000, "Valid for 30 days")
    currency = fields.String(
        validate=validate.Regexp(r"^[A-Z]{3}\Z", error=N_("An ISO 4217 code, e.g. GBP.")),
        metadata={"example": "GBP"},
    )
    position = fields.Integer(
        strict=True,
        validate=validate.Range(0, 10000),
        metadata={"example": 10, "description": "order in the portal, lowest first"},
    )
    active = fields.Boolean(metadata={"description": "offered to customers; false retires it"})


class OperatorTopupProductIn(_EntryIn):
    kind = fields.String(
        required=True, validate=validate.OneOf(KINDS), metadata={"example": "data"}
    )
    quantity = fields.Integer(
        strict=True,
        validate=validate.Range(0, MAX_QUANTITY),
        metadata={
            "example": 5368709120,
            "description": "what it adds: bytes, seconds, messages, or minor units of credit; "
            "0 when custom",
        },
    )
    price = Amount(strict=True, metadata={"example": 500, "description": "minor units, tax in"})
    custom = fields.Boolean(
        metadata={"description": "monetary only: the customer chooses the amount"}
    )
    min_amount = Amount(minimum=1, strict=True, allow_none=True)
    max_amount = Amount(minimum=1, strict=True, allow_none=True)
    validity_days = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(1, 3650),
        metadata={"example": 30, "description": "null: the credit never expires"},
    )
    weight = fields.Integer(
        strict=True,
        validate=validate.Range(0, 1000),
        metadata={"example": 20, "description": "USE-3: lower is used first (20 top-ups)"},
    )


class OperatorAddonProductIn(_EntryIn):
    category = fields.String(
        required=True, validate=validate.OneOf(CATEGORIES), metadata={"example": "roaming"}
    )
    one_off_price = Amount(strict=True, metadata={"example": 0, "description": "minor units"})
    recurring_price = Amount(
        strict=True, metadata={"example": 500, "description": "minor units, each period"}
    )
    period_days = fields.Integer(
        strict=True, validate=validate.Range(1, 366), metadata={"example": 30}
    )
    provisioner = fields.String(
        validate=validate.And(validate.Length(1, 60), ONE_LINE),
        metadata={
            "example": "instant",
            "description": "who sets it up: 'instant', 'static_ip', or a partner plugin's id",
        },
    )
    removable = fields.Boolean(metadata={"description": "customers may take it off online"})


class _EntryOut(OperatorSynced):
    code = fields.String()
    name = fields.String()
    service_type = fields.String()
    description = fields.String()
    currency = fields.String()
    position = fields.Integer()
    active = fields.Boolean()


class OperatorTopupProductOut(_EntryOut):
    kind = fields.String()
    quantity = fields.Integer()
    unit = fields.String()
    price = fields.Integer()
    custom = fields.Boolean()
    min_amount = fields.Integer(allow_none=True)
    max_amount = fields.Integer(allow_none=True)
    validity_days = fields.Integer(allow_none=True)
    weight = fields.Integer()


class OperatorAddonProductOut(_EntryOut):
    category = fields.String()
    one_off_price = fields.Integer()
    recurring_price = fields.Integer()
    period_days = fields.Integer()
    provisioner = fields.String()
    removable = fields.Boolean()


class EntryListQuery(PageQuery):
    updated_since = AwareDateTime(
        metadata={"description": "only entries changed at or after this time (ISO 8601)"}
    )


TopupProductPage = page_schema(OperatorTopupProductOut, "OperatorTopupProductPage")
AddonProductPage = page_schema(OperatorAddonProductOut, "OperatorAddonProductPage")


_PUT = (
    "Idempotent: the same body again answers `\"change\": \"unchanged\"`; fields left out "
    "keep their value. `code` is set on create only. `active: false` retires the entry "
    "(what customers bought keeps its terms). Needs the `catalogue:write` scope."
)

TOPUP_PRODUCTS = _pair(
    TopupProduct,
    "catalogue:write",
    upsert_topup_product,
    "catalogue top-up",
    OperatorTopupProductOut,
    OperatorTopupProductIn,
    TopupProductPage,
    put_description=f"A top-up offered on services of `service_type`. {_PUT}",
    query=EntryListQuery,
)
ADDON_PRODUCTS = _pair(
    AddonProduct,
    "catalogue:write",
    upsert_addon_product,
    "catalogue add-on",
    OperatorAddonProductOut,
    OperatorAddonProductIn,
    AddonProductPage,
    put_description=f"An add-on offered on services of `service_type`. {_PUT}",
    query=EntryListQuery,
)
