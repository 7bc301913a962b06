"""acme-weather's own table. Tables are prefixed with the plugin's name so they never collide."""

from __future__ import annotations

from peewee import CharField, DateField, ForeignKeyField, IntegerField

from engine.db import BaseModel, UTCDateTimeField, utcnow
from engine.models import Customer, Site


class Forecast(BaseModel):
    """One day's forecast at one site. ``customer`` scopes it to its tenant (``owned()``)."""

    customer = ForeignKeyField(Customer, on_delete="CASCADE")
    site = ForeignKeyField(Site, on_delete="CASCADE")
    day = DateField()
    summary = CharField(max_length=40)
    high_c = IntegerField()
    low_c = IntegerField()
    fetched_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "acme_weather_forecast"
        indexes = ((("site", "day"), True),)
