"""Shapes of the services API and forms, and the plugin's settings."""

from marshmallow import Schema, fields, validate

from engine.api import MoneySchema, PageQuery, page_schema
from engine.i18n import N_
from engine.models import SERVICE_STATUSES, SERVICE_TYPES

INDICATORS = ("active", "expiring", "suspended", "expired", "cancelled")


class ServicesSettings(Schema):
    """``[services]`` in portico.toml."""

    allow_cancel = fields.Boolean(
        load_default=False,
        metadata={
            "description": "let customers cancel a service in the portal, where its product "
            "also allows it (SVC-4); otherwise the portal points to support"
        },
    )


class ServiceQuery(PageQuery):
    status = fields.String(load_default=None, validate=validate.OneOf(SERVICE_STATUSES))
    type = fields.String(load_default=None, validate=validate.OneOf(SERVICE_TYPES))


class ProductRef(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    description = fields.String()


class ActionSchema(Schema):
    id = fields.String()
    label = fields.String()
    href = fields.String()
    plugin = fields.String()


class EsimSchema(Schema):
    activation_code = fields.String(
        metadata={"description": "LPA:1$<SM-DP+ address>$<matching id>"}
    )
    smdp_address = fields.String()
    matching_id = fields.String()


class ServiceSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    identifier = fields.String()
    service_type = fields.String(metadata={"enum": list(SERVICE_TYPES)})
    status = fields.String(metadata={"enum": list(SERVICE_STATUSES)})
    indicator = fields.String(
        metadata={
            "enum": list(INDICATORS),
            "description": "SVC-2 status light: expiring when renewal or expiry is under 7 days away",
        }
    )
    suspended_reason = fields.String()
    product = fields.Nested(ProductRef)
    site_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    period_start = fields.DateTime(
        metadata={"description": "start of the current period (the last renewal)"}
    )
    renews_at = fields.DateTime(
        allow_none=True,
        metadata={"description": "the next renewal; null once the service has ended"},
    )
    expires_at = fields.DateTime(allow_none=True)
    ended_at = fields.DateTime(
        allow_none=True,
        metadata={"description": "when an expired or cancelled service ended (SVC-1)"},
    )
    monthly_fee = fields.Nested(MoneySchema)
    auto_renew = fields.Boolean()
    pending_plan = fields.String(
        allow_none=True,
        metadata={"description": "the plan a scheduled downgrade switches to at the next renewal"},
    )
    cancellable = fields.Boolean(metadata={"description": "the customer may cancel it (SVC-4)"})
    modifiable = fields.Boolean(
        metadata={"description": "the customer may switch auto-renew and change plan (SVC-3)"}
    )
    actions = fields.List(fields.Nested(ActionSchema))
    esim = fields.Nested(EsimSchema, allow_none=True)


ServicePage = page_schema(ServiceSchema, "ServicePage")


class CancelIn(Schema):
    reason = fields.String(load_default="", validate=validate.Length(max=500))


class CancelForm(CancelIn):
    """The portal's confirmation form: the customer ticks a box."""

    confirm = fields.Boolean(
        required=True,
        validate=validate.Equal(True, error=N_("Tick the box to confirm the cancellation.")),
        error_messages={"required": N_("Tick the box to confirm the cancellation.")},
    )


class ServicePatch(Schema):
    auto_renew = fields.Boolean(required=True)


class PlanOptionSchema(Schema):
    """A compatible plan and what switching to it costs (SVC-3)."""

    plan = fields.String(metadata={"description": "the product's external id"})
    product = fields.Nested(ProductRef)
    kind = fields.String(
        metadata={
            "enum": ["upgrade", "downgrade"],
            "description": "upgrade (higher fee): now, with `charge_now`; downgrade: at the "
            "next renewal",
        }
    )
    monthly_fee = fields.Nested(MoneySchema)
    current_fee = fields.Nested(MoneySchema)
    days_left = fields.Integer(metadata={"description": "whole days left in the period"})
    period_days = fields.Integer()
    charge_now = fields.Nested(
        MoneySchema,
        metadata={
            "description": "days left / period days × the fee difference, rounded down; "
            "charged to the account, invoiced with the next bill"
        },
    )
    applies_at = fields.DateTime()


class PlanOptions(Schema):
    items = fields.List(fields.Nested(PlanOptionSchema))
    pending_plan = fields.String(allow_none=True)


class PlanChangeIn(Schema):
    plan = fields.String(required=True, validate=validate.Length(min=1, max=100))
    confirm = fields.Boolean(
        load_default=False,
        metadata={"description": "false (the default): only quote; true: do it"},
    )


class PlanChangeOut(PlanOptionSchema):
    done = fields.String(
        allow_none=True,
        metadata={
            "enum": ["applied", "scheduled", None],
            "description": "null for a quote; `applied` (an upgrade) or `scheduled` (a "
            "downgrade, at the next renewal)",
        },
    )


class PlanForm(Schema):
    """The portal's confirm step: the plan chosen, confirmed."""

    plan = fields.String(required=True, validate=validate.Length(min=1, max=100))


class EmptyForm(Schema):
    pass
