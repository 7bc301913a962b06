"""Settings and API shapes of acme-weather."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from engine.settings import secret


class WeatherSettings(Schema):
    """The ``[acme_weather]`` table of ``portico.toml`` (validated at start-up)."""

    units = fields.String(
        load_default="metric",
        validate=validate.OneOf(["metric", "imperial"]),
        metadata={"description": "metric (°C) or imperial (°F)"},
    )
    days = fields.Integer(
        load_default=3,
        validate=validate.Range(1, 7),
        metadata={"description": "forecast days per site"},
    )
    api_key = secret(
        fields.String(
            load_default="",
            metadata={"description": "the forecast provider's key (the sample source needs none)"},
        )
    )


class Day(Schema):
    date = fields.Date()
    summary = fields.String()
    high = fields.Integer()
    low = fields.Integer()
    unit = fields.String(metadata={"enum": ["C", "F"]})


class SiteForecast(Schema):
    id = fields.Integer(metadata={"description": "the site's id"})
    label = fields.String()
    city = fields.String()
    days = fields.List(fields.Nested(Day))


class SiteForecastList(Schema):
    items = fields.List(fields.Nested(SiteForecast))
    next = fields.String(allow_none=True)


class Queued(Schema):
    queued = fields.String(metadata={"description": "id of the background job"})
