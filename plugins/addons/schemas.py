"""Add-on settings, and the shapes of the add-on API and forms (one schema for both faces)."""

from __future__ import annotations

import ipaddress

from marshmallow import Schema, ValidationError, fields, validate

from engine.api import Amount, Id, money, page_schema
from engine.catalogue import CatalogueEntryIn, CataloguePatch
from engine.i18n import N_
from plugins.addons.models import CATEGORIES, STATUSES
from plugins.billing.public import PayOut


def _network(value: str) -> None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValidationError(N_("An address range such as 203.0.113.0/28.")) from None


class AddonSettings(Schema):
    """``[addons]``"""

    static_ip_pool = fields.String(
        load_default="203.0.113.0/28",
        validate=_network,
        metadata={"description": "addresses the built-in static_ip provisioner hands out (CIDR)"},
    )


class AddonProductSchema(Schema):
    """A catalogue entry as customers see it. Prices include tax."""

    id = fields.Integer()
    code = fields.String()
    category = fields.String(metadata={"enum": list(CATEGORIES)})
    name = fields.String()
    description = fields.String()
    one_off_price = fields.Function(lambda p: money(p.one_off_price, p.currency))
    recurring_price = fields.Function(lambda p: money(p.recurring_price, p.currency))
    period_days = fields.Integer(
        metadata={"description": "the recurring price is per this many days"}
    )
    removable = fields.Boolean(metadata={"description": "can be removed online"})


class StaffAddonProductSchema(AddonProductSchema):
    service_type = fields.String()
    currency = fields.String()
    provisioner = fields.String()
    position = fields.Integer()
    active = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


StaffAddonCatalogue = page_schema(StaffAddonProductSchema, "StaffAddonCatalogue")


class AddonProductIn(CatalogueEntryIn):
    """A new catalogue entry (staff). Prices in minor units, tax included."""

    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    one_off_price = Amount(load_default=0)
    recurring_price = Amount(load_default=0)
    period_days = fields.Integer(load_default=30, validate=validate.Range(1, 366))
    provisioner = fields.String(
        load_default="instant",
        validate=validate.Length(1, 60),
        metadata={
            "description": "who sets it up: 'instant', 'static_ip', or a partner plugin's id"
        },
    )
    removable = fields.Boolean(load_default=True)


class AddonProductPatch(CataloguePatch, AddonProductIn):
    """Change a catalogue entry: any of its fields (the code stays)."""


class AddonSchema(Schema):
    """An add-on on a service, with where it stands."""

    id = fields.Integer()
    service_id = fields.Integer()
    product_id = fields.Integer(allow_none=True)
    name = fields.String()
    category = fields.String()
    status = fields.String(metadata={"enum": list(STATUSES)})
    one_off_price = fields.Function(lambda a: money(a.one_off_price, a.currency))
    recurring_price = fields.Function(lambda a: money(a.recurring_price, a.currency))
    period_days = fields.Integer()
    removable = fields.Boolean()
    detail = fields.String(metadata={"description": "e.g. the static IP address"})
    failure_message = fields.String()
    payment_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    activated_at = fields.DateTime(allow_none=True)
    removed_at = fields.DateTime(allow_none=True)
    next_charge_at = fields.DateTime(allow_none=True)


class AddonsOut(Schema):
    available = fields.List(
        fields.Nested(AddonProductSchema), metadata={"description": "what this service can add"}
    )
    items = fields.List(
        fields.Nested(AddonSchema),
        metadata={"description": "this service's add-ons, newest first (removed ones too)"},
    )
    next = fields.String(allow_none=True)


class AddonChoiceQuery(Schema):
    # Not required here: the service is checked first (another customer's is a 404).
    product_id = Id(
        load_default=None, allow_none=True, error_messages={"invalid": N_("Choose an add-on.")}
    )


class AddonReviewOut(Schema):
    product_id = fields.Function(lambda r: r["product"].id)
    name = fields.String()
    category = fields.String()
    description = fields.String()
    one_off = fields.Dict(metadata={"description": "charged now"})
    recurring = fields.Dict(metadata={"description": "charged each period from activation"})
    period_days = fields.Integer()
    removable = fields.Boolean()
    pay_now = fields.Boolean()


class AddonOrderIn(Schema):
    product_id = Id(required=True)
    payment_method_id = Id(
        load_default=None,
        allow_none=True,
        metadata={"description": "a saved card for the one-off price; default: your default card"},
    )


class AddonOrderOut(PayOut):
    addon = fields.Nested(AddonSchema)
