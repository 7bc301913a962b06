"""Web push settings and API shapes."""

from marshmallow import Schema, fields, validate

from engine.settings import secret


class WebPushSettings(Schema):
    vapid_private_key = secret(
        fields.String(
            load_default="",
            metadata={"description": "VAPID private key (base64url, from `portico webpush keys`)"},
        )
    )
    vapid_public_key = fields.String(
        load_default="", metadata={"description": "VAPID public key (base64url) handed to browsers"}
    )
    vapid_subject = fields.String(
        load_default="mailto:support@example.com",
        metadata={"description": "contact for push services: mailto: or https: URL"},
    )
    ttl_seconds = fields.Integer(load_default=24 * 3600, validate=validate.Range(0, 28 * 86400))


class SubscriptionKeys(Schema):
    p256dh = fields.String(required=True, validate=validate.Length(min=20, max=200))
    auth = fields.String(required=True, validate=validate.Length(min=8, max=100))


class SubscriptionIn(Schema):
    endpoint = fields.Url(
        required=True,
        schemes={"https"},
        require_tld=False,
        validate=validate.Length(max=1000),
        metadata={
            "description": "the push service's https URL; it must resolve "
            "to public internet addresses only (SEC-2)"
        },
    )
    keys = fields.Nested(SubscriptionKeys, required=True)


class SubscriptionOut(Schema):
    id = fields.Integer()
    endpoint = fields.String()
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)


class SubscriptionList(Schema):
    items = fields.List(fields.Nested(SubscriptionOut))
    next = fields.String(allow_none=True)


class PublicKeyOut(Schema):
    public_key = fields.String()
