"""Notification preferences, as the API and the form take them."""

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from engine.api import Amount
from plugins.notifications.service import CATEGORIES

percent: dict[str, Any] = dict(strict=False, validate=validate.Range(1, 100))


class ThresholdsSchema(Schema):
    data = fields.Integer(required=True, metadata={"description": "percent left"}, **percent)
    voice = fields.Integer(required=True, metadata={"description": "percent left"}, **percent)
    sms = fields.Integer(required=True, metadata={"description": "percent left"}, **percent)
    monetary = Amount(required=True, metadata={"description": "credit below this, in minor units"})


class PreferencesSchema(Schema):
    frequency = fields.String(
        required=True,
        validate=validate.OneOf(["immediate", "digest"]),
        metadata={"description": "immediate, or one daily digest email"},
    )
    channels = fields.Dict(
        keys=fields.String(validate=validate.OneOf(CATEGORIES)),
        values=fields.List(fields.String()),
        required=True,
        metadata={"description": "category → channel ids; security is always sent by email"},
    )
    thresholds = fields.Nested(ThresholdsSchema, required=True)


class PreferencesOut(PreferencesSchema):
    available_channels = fields.List(fields.Dict())


def check_channels(data: dict, known: set[str]) -> None:
    """Channel ids are only known at run time (plugins), so check them after loading."""
    bad = {
        c: [f"Unknown channel '{x}'." for x in ids if x not in known]
        for c, ids in data["channels"].items()
    }
    bad = {c: m for c, m in bad.items() if m}
    if bad:
        raise ValidationError({"channels": bad})
