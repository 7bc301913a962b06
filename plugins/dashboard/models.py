"""Which in-portal alerts a user has dismissed (NOT-2)."""

from peewee import CharField, ForeignKeyField

from engine.db import BaseModel, UTCDateTimeField, utcnow
from engine.models import User


class AlertDismissal(BaseModel):
    """Alert ids carry their state (e.g. ``invoice-overdue-42``), so a new alert shows again."""

    user = ForeignKeyField(User, on_delete="CASCADE")
    alert_id = CharField(max_length=200)
    dismissed_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("user", "alert_id"), True),)
