"""A user's notification preferences, and notices kept for their daily digest."""

from peewee import CharField, ForeignKeyField

import peewee

from engine.db import BaseModel, UTCDateTimeField, utcnow
from engine.models import User


class NotificationPreference(BaseModel):
    """NOT-3. ``channels`` maps category → list of channel ids; security is always on."""

    user = ForeignKeyField(User, unique=True, on_delete="CASCADE")
    frequency = CharField(max_length=10, default="immediate")  # immediate | digest
    channels = peewee.JSONField(default=dict)
    thresholds = peewee.JSONField(default=dict)
    updated_at = UTCDateTimeField(default=utcnow)


class DigestItem(BaseModel):
    """A notice held for the user's next daily digest (one per notice key)."""

    user = ForeignKeyField(User, on_delete="CASCADE")
    key = CharField(max_length=200)
    kind = CharField(max_length=100)
    category = CharField(max_length=20)
    data = peewee.JSONField(default=dict)
    created_at = UTCDateTimeField(default=utcnow)
    digest_key = CharField(max_length=100, null=True, index=True)  # set when sent
    channel = CharField(max_length=20, default="email")

    class Meta:
        indexes = ((("user", "key", "channel"), True),)
