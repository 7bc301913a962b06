"""Top-up settings, and the shapes of the top-up API and forms (one schema for both faces)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from engine.api import MAX_AMOUNT, Amount, Id, MajorAmount, money, page_schema
from engine.catalogue import CatalogueEntryIn, CataloguePatch
from engine.i18n import N_
from plugins.billing.public import PayOut
from plugins.topups.models import KINDS
from plugins.topups.service import MAX_THRESHOLD


def _money(amount, currency) -> dict | None:
    return None if amount is None else money(amount, currency)


class FormSchema(Schema):
    """A portal form: an empty field is a field left out."""

    @pre_load
    def drop_blanks(self, data, **kwargs):
        return {k: v for k, v in data.items() if v != ""}


class TopupSettings(Schema):
    """``[topups]``"""

    auto_daily_limit = fields.Integer(
        load_default=3,
        validate=validate.Range(1, 50),
        metadata={
            "description": "automatic top-ups one service may make in 24 hours before auto top-up "
            "switches itself off (protects a card from a runaway usage feed)"
        },
    )


# -- the catalogue ----------------------------------------------------------------------------


class TopupProductSchema(Schema):
    """A catalogue entry as customers see it. ``price`` includes tax."""

    id = fields.Integer()
    code = fields.String()
    kind = fields.String(metadata={"enum": list(KINDS)})
    name = fields.String()
    description = fields.String()
    quantity = fields.Integer(
        metadata={
            "description": "bytes, seconds, messages, or minor units of credit; 0 when custom"
        }
    )
    unit = fields.String()
    price = fields.Function(lambda p: _money(p.price, p.currency))
    custom = fields.Boolean(metadata={"description": "the customer chooses the amount"})
    min_amount = fields.Function(lambda p: _money(p.min_amount, p.currency) if p.custom else None)
    max_amount = fields.Function(lambda p: _money(p.max_amount, p.currency) if p.custom else None)
    validity_days = fields.Integer(allow_none=True, metadata={"description": "null: no expiry"})
    weight = fields.Integer(metadata={"description": "USE-3 consumption order (lowest first)"})


class TopupCatalogue(Schema):
    items = fields.List(fields.Nested(TopupProductSchema))
    next = fields.String(allow_none=True)


class StaffTopupProductSchema(TopupProductSchema):
    service_type = fields.String()
    currency = fields.String()
    position = fields.Integer()
    active = fields.Boolean()
    raw_min_amount = fields.Integer(
        attribute="min_amount", data_key="min_amount_minor", allow_none=True
    )
    raw_max_amount = fields.Integer(
        attribute="max_amount", data_key="max_amount_minor", allow_none=True
    )
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


StaffTopupCatalogue = page_schema(StaffTopupProductSchema, "StaffTopupCatalogue")


class TopupProductIn(CatalogueEntryIn):
    """A new catalogue entry (staff). Amounts in minor units; ``price`` includes tax."""

    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    quantity = fields.Integer(load_default=0, validate=validate.Range(0, 10**15))
    price = Amount(load_default=0)
    custom = fields.Boolean(load_default=False)
    min_amount = Amount(minimum=1, load_default=None, allow_none=True)
    max_amount = Amount(minimum=1, load_default=None, allow_none=True)
    validity_days = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(1, 3650)
    )
    weight = fields.Integer(load_default=20, validate=validate.Range(0, 1000))

    @validates_schema
    def credit_is_money(self, data, **kwargs):
        """Credit's quantity is minor units of money: bounded like any amount."""
        if data.get("kind") == "monetary" and data.get("quantity", 0) > MAX_AMOUNT:
            raise ValidationError(
                N_("Credit is money: at most %(amount)s minor units.", amount=MAX_AMOUNT),
                "quantity",
            )


class TopupProductPatch(CataloguePatch, TopupProductIn):
    """Change a catalogue entry: any of its fields (the code stays)."""


# -- review and purchase ---------------------------------------------------------------------


class TopupChoiceQuery(Schema):
    """``GET .../topups/review?product_id=3&amount=1250``"""

    # Not required here: the service is checked first (another customer's is a 404).
    product_id = Id(load_default=None, allow_none=True)
    amount = Amount(
        minimum=1,
        load_default=None,
        allow_none=True,
        metadata={"description": "minor units, for a custom amount of credit"},
    )


class TopupBucketRow(Schema):
    name = fields.String()
    type = fields.String()
    remaining = fields.Integer()
    unit = fields.String()
    weight = fields.Integer()
    expires_at = fields.DateTime(allow_none=True)
    new = fields.Boolean(metadata={"description": "the bucket this top-up would add"})


class TopupReviewOut(Schema):
    product_id = fields.Function(lambda r: r["product"].id)
    kind = fields.String()
    name = fields.String()
    quantity = fields.Integer()
    unit = fields.String()
    price = fields.Dict()
    weight = fields.Integer()
    expires_at = fields.DateTime(allow_none=True)
    balance_after = fields.Dict(metadata={"description": "{remaining, unit} of this type"})
    order = fields.List(
        fields.Nested(TopupBucketRow),
        metadata={"description": "the buckets of this type in the order they would be used"},
    )


class TopupPurchaseIn(Schema):
    product_id = Id(required=True)
    amount = Amount(
        minimum=1,
        load_default=None,
        allow_none=True,
        metadata={"description": "minor units, for a custom amount of credit"},
    )
    payment_method_id = Id(
        load_default=None,
        allow_none=True,
        metadata={"description": "a saved card; default: your default card"},
    )


class TopupPurchaseSchema(Schema):
    id = fields.Integer()
    service_id = fields.Integer()
    status = fields.String(
        metadata={"enum": ["pending", "credited", "failed", "refunding", "refunded"]}
    )
    kind = fields.String()
    name = fields.String()
    quantity = fields.Integer()
    unit = fields.String()
    price = fields.Function(lambda p: _money(p.price, p.currency))
    weight = fields.Integer()
    expires_at = fields.DateTime(allow_none=True)
    auto = fields.Boolean()
    payment_id = fields.Integer(allow_none=True)
    failure_message = fields.String()
    created_at = fields.DateTime()
    credited_at = fields.DateTime(allow_none=True)


class TopupPurchasePage(Schema):
    items = fields.List(fields.Nested(TopupPurchaseSchema))
    next = fields.String(allow_none=True)


class TopupPurchaseOut(PayOut):
    purchase = fields.Nested(TopupPurchaseSchema)


class TopupChoiceForm(FormSchema):
    """The catalogue page's form (a GET): the product, and a custom amount in pounds."""

    product_id = Id(
        required=True,
        error_messages={"required": N_("Choose a top-up."), "invalid": N_("Choose a top-up.")},
    )
    amount = MajorAmount(
        load_default=None,
        allow_none=True,
        error_messages={"invalid": N_("Enter an amount such as 12.50.")},
    )


# -- auto top-up --------------------------------------------------------------------------


class AutoTopupOut(Schema):
    enabled = fields.Boolean()
    threshold = fields.Integer(metadata={"description": "minor units: top up below this"})
    amount = fields.Integer(metadata={"description": "minor units of credit to buy"})
    currency = fields.String()
    disabled_reason = fields.String(metadata={"description": "why it was switched off for you"})
    amounts = fields.Dict(metadata={"description": "{presets: [...], min, max} on offer"})


class AutoTopupIn(Schema):
    enabled = fields.Boolean(required=True)
    threshold = Amount(minimum=1, maximum=MAX_THRESHOLD, load_default=None, allow_none=True)
    amount = Amount(minimum=1, load_default=None, allow_none=True)


class AutoTopupForm(FormSchema):
    """The auto top-up page: pounds, as people type them."""

    enabled = fields.Boolean(load_default=False)
    threshold = MajorAmount(
        load_default=None,
        allow_none=True,
        error_messages={"invalid": N_("Enter an amount such as 5.00.")},
    )
    amount = MajorAmount(
        load_default=None,
        allow_none=True,
        error_messages={"invalid": N_("Enter an amount such as 10.00.")},
    )
