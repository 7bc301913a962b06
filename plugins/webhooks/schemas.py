"""Webhook settings and API shapes."""

from marshmallow import Schema, fields, validate

from engine.api import PageQuery
from engine.events import EVENT_TYPES

EVENT_TYPE = fields.String(validate=validate.OneOf(sorted(EVENT_TYPES)))


class WebhookSettings(Schema):
    retry_hours = fields.Integer(
        load_default=24,
        validate=validate.Range(24, 24 * 7),
        metadata={
            "description": "how long a failing delivery is retried (exponential backoff) "
            "before it is marked failed"
        },
    )
    timeout_seconds = fields.Integer(
        load_default=10,
        validate=validate.Range(1, 60),
        metadata={"description": "how long one delivery waits for the endpoint to answer"},
    )


class EndpointIn(Schema):
    url = fields.Url(
        required=True,
        schemes={"https"},
        require_tld=False,
        validate=validate.Length(max=1000),
        metadata={"description": "an https URL at a public internet address (SEC-2)"},
    )
    event_types = fields.List(
        EVENT_TYPE, required=True, validate=validate.Length(min=1, max=len(EVENT_TYPES))
    )
    description = fields.String(load_default="", validate=validate.Length(max=200))
    enabled = fields.Boolean(load_default=True)


class EndpointPatch(Schema):
    """What a PATCH changes; what it leaves out stays."""

    url = fields.Url(schemes={"https"}, require_tld=False, validate=validate.Length(max=1000))
    event_types = fields.List(EVENT_TYPE, validate=validate.Length(min=1, max=len(EVENT_TYPES)))
    description = fields.String(validate=validate.Length(max=200))
    enabled = fields.Boolean()


class EndpointOut(Schema):
    id = fields.Integer()
    url = fields.String()
    description = fields.String()
    event_types = fields.List(fields.String(), attribute="types")
    enabled = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class EndpointCreated(EndpointOut):
    secret = fields.String(
        attribute="plain_secret",
        metadata={"description": "the signing secret, shown this once (whsec_...)"},
    )


class EndpointList(Schema):
    items = fields.List(fields.Nested(EndpointOut))
    next = fields.String(allow_none=True)


class DeliveryOut(Schema):
    id = fields.Integer()
    event_id = fields.String(attribute="event.uid")
    event_type = fields.String(attribute="event.type")
    endpoint_id = fields.Integer()
    status = fields.String(metadata={"description": "pending, delivered or failed"})
    attempts = fields.Integer()
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String()
    next_attempt_at = fields.DateTime(allow_none=True)
    last_attempt_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class DeliveryList(Schema):
    items = fields.List(fields.Nested(DeliveryOut))
    next = fields.String(allow_none=True)


class DeliveryQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(["pending", "delivered", "failed"]))


class ProvisionedIn(Schema):
    reference = fields.String(load_default=None, validate=validate.Length(max=100))
    detail = fields.String(
        load_default="",
        validate=validate.Length(max=200),
        metadata={"description": "what the customer needs to know (an address, a number)"},
    )


class ProvisionFailedIn(Schema):
    message = fields.String(
        load_default="",
        validate=validate.Length(max=300),
        metadata={"description": "why, shown to the customer"},
    )


class AddonStateOut(Schema):
    id = fields.Integer()
    status = fields.String()
    reference = fields.String(allow_none=True)
    detail = fields.String()
    failure_message = fields.String()
