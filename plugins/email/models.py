"""One row per email to send: the unique (key, address) pair makes delivery happen once."""

from peewee import CharField, IntegerField, TextField

import peewee

from engine.db import BaseModel, UTCDateTimeField, utcnow


class EmailDelivery(BaseModel):
    key = CharField(max_length=200)
    kind = CharField(max_length=100)
    address = CharField(max_length=254)
    user_id = IntegerField(null=True)
    customer_id = IntegerField(null=True, index=True)
    locale = CharField(max_length=10, default="en")
    data = peewee.JSONField(default=dict)
    status = CharField(
        max_length=20, default="pending"
    )  # pending, sending, sent, unconfirmed, failed
    attempts = IntegerField(default=0)
    last_error = TextField(default="")
    created_at = UTCDateTimeField(default=utcnow)
    touched_at = UTCDateTimeField(
        default=utcnow
    )  # queued, claimed or failed: the last sign of life
    sent_at = UTCDateTimeField(null=True)

    class Meta:
        indexes = ((("key", "address"), True), (("status", "touched_at"), False))
