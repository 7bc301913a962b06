"""Products (plans) through the operator API (INT-1, issue 17): ``PUT``/``GET
/api/v1/operator/products/{external_id}`` and the list, with the plans a service on each
may switch to (``compatible_plans``, used by the services' ``change-plan`` action)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from engine.api import AwareDateTime, PageQuery, page_schema
from engine.i18n import N_
from engine.models import SERVICE_TYPES, Product
from plugins.operator.resources import _pair
from plugins.operator.schemas import EXTERNAL_ID, OperatorSynced, text
from engine.upserts import upsert_product

MAX_FEE = 100_000_000  # minor units: a million pounds a month is a typing error
MAX_COMPATIBLE = 100


class OperatorProductIn(Schema):
    name = text(1, 200, "Mobile 20 GB", required=True)
    code = text(
        1,
        50,
        "mobile-20gb",
        metadata={
            "description": "what services name it by (`product`); default on create: the "
            "external id"
        },
    )
    service_type = fields.String(
        validate=validate.OneOf(SERVICE_TYPES), metadata={"example": "mobile"}
    )
    monthly_fee = fields.Integer(
        strict=True,
        validate=validate.Range(0, MAX_FEE),
        metadata={"example": 1500, "description": "in minor units (pence)"},
    )
    currency = fields.String(
        validate=validate.Regexp(r"^[A-Z]{3}\Z", error=N_("An ISO 4217 code, e.g. GBP.")),
        metadata={"example": "GBP"},
    )
    period_days = fields.Integer(
        strict=True, validate=validate.Range(1, 3660), metadata={"example": 30}
    )
    allow_cancel = fields.Boolean(metadata={"description": "customers may cancel in the portal"})
    allow_modify = fields.Boolean(metadata={"description": "customers may switch auto-renew"})
    description = text(0, 2000, "20 GB of data, unlimited minutes and texts")
    compatible_plans = fields.List(
        fields.String(validate=EXTERNAL_ID),
        validate=validate.Length(max=MAX_COMPATIBLE),
        metadata={
            "example": ["PLAN-MOBILE-50GB"],
            "description": "external ids of the products a service on this plan may switch "
            "to (`change-plan`); they may be sent before those products exist",
        },
    )


class OperatorProductOut(OperatorSynced):
    code = fields.String()
    name = fields.String()
    service_type = fields.String()
    monthly_fee = fields.Integer()
    currency = fields.String()
    period_days = fields.Integer()
    allow_cancel = fields.Boolean()
    allow_modify = fields.Boolean()
    description = fields.String()
    compatible_plans = fields.List(fields.String())


class ProductListQuery(PageQuery):
    updated_since = AwareDateTime(
        metadata={"description": "only products changed at or after this time (ISO 8601)"}
    )


ProductPage = page_schema(OperatorProductOut, "OperatorProductPage")


PRODUCTS = _pair(
    Product,
    "catalogue:write",
    upsert_product,
    "product",
    OperatorProductOut,
    OperatorProductIn,
    ProductPage,
    put_description="Idempotent: the same body again answers `\"change\": \"unchanged\"`; "
    "fields left out keep their value. `compatible_plans` lists the plans a service on "
    "this one may switch to. Needs the `catalogue:write` scope.",
    query=ProductListQuery,
)
