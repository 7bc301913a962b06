"""Webhook endpoints, the events recorded for them, and one delivery per event and endpoint."""

from peewee import (
    BooleanField,
    CharField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from engine.db import BaseModel, UTCDateTimeField, utcnow


class WebhookEndpoint(BaseModel):
    #: The signing secret is sealed (``engine.security.seal``): it must be read back to sign.
    SEALED_FIELDS = ("secret",)

    url = CharField(max_length=1000)
    description = CharField(max_length=200, default="")
    event_types = TextField(default="")  # space-separated, from engine.events.EVENT_TYPES
    secret = CharField(max_length=300)
    enabled = BooleanField(default=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    @property
    def types(self) -> list[str]:
        return self.event_types.split()


class WebhookEvent(BaseModel):
    uid = CharField(max_length=40, unique=True)  # evt_...: the id receivers de-duplicate by
    type = CharField(max_length=60)
    data = TextField()  # JSON
    customer_id = IntegerField(null=True)
    created_at = UTCDateTimeField(default=utcnow)


class WebhookDelivery(BaseModel):
    event = ForeignKeyField(WebhookEvent, on_delete="CASCADE")
    endpoint = ForeignKeyField(WebhookEndpoint, backref="deliveries", on_delete="CASCADE")
    status = CharField(max_length=20, default="pending")  # pending, delivered, failed
    attempts = IntegerField(default=0)
    next_attempt_at = UTCDateTimeField(null=True)  # when a pending delivery is tried next
    retry_until = UTCDateTimeField()  # a failure after this marks it failed (a replay resets it)
    last_attempt_at = UTCDateTimeField(null=True)
    last_status_code = IntegerField(null=True)
    last_error = CharField(max_length=300, default="")
    created_at = UTCDateTimeField(default=utcnow)
    delivered_at = UTCDateTimeField(null=True)

    class Meta:
        indexes = (
            (("event", "endpoint"), True),
            (("status", "next_attempt_at"), False),
            (("endpoint", "id"), False),
        )


MODELS = (WebhookEndpoint, WebhookEvent, WebhookDelivery)
