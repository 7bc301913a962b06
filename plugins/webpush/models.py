"""Browsers subscribed to push, and one row per push to send."""

from peewee import CharField, ForeignKeyField, TextField

from engine.db import BaseModel, UTCDateTimeField, utcnow
from engine.models import User


class PushSubscription(BaseModel):
    user = ForeignKeyField(User, backref="push_subscriptions", on_delete="CASCADE")
    endpoint = CharField(max_length=1000, unique=True)
    p256dh = CharField(max_length=200)
    auth = CharField(max_length=100)
    user_agent = CharField(max_length=300, default="")
    created_at = UTCDateTimeField(default=utcnow)
    last_used_at = UTCDateTimeField(null=True)

    @classmethod
    def for_customer(cls, customer_id):
        from engine.models import Contact

        return cls.select().join(User).join(Contact).where(Contact.customer == customer_id)


class PushDelivery(BaseModel):
    key = CharField(max_length=200)
    subscription = ForeignKeyField(PushSubscription, on_delete="CASCADE")
    title = CharField(max_length=200)
    body = TextField(default="")
    url = CharField(max_length=500, default="/")
    status = CharField(max_length=20, default="pending")  # pending, sent, gone, refused
    created_at = UTCDateTimeField(default=utcnow)
    sent_at = UTCDateTimeField(null=True)

    class Meta:
        indexes = ((("key", "subscription"), True),)
