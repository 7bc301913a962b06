"""Shapes of the shell API."""
from marshmallow import Schema, fields


class SectionSchema(Schema):
    id = fields.String()
    title = fields.String()
    path = fields.String()
    icon = fields.String()
    order = fields.Integer()
    plugin = fields.String()


class AlertSchema(Schema):
    id = fields.String()
    level = fields.String(metadata={"enum": ["info", "warning", "danger"]})
    message = fields.String()
    link = fields.String(allow_none=True)
    dismissible = fields.Boolean()
    plugin = fields.String()


class CardSchema(Schema):
    id = fields.String()
    title = fields.String()
    data = fields.Dict()
    order = fields.Integer()
    plugin = fields.String()


class SectionList(Schema):
    items = fields.List(fields.Nested(SectionSchema))
    next = fields.String(allow_none=True)


class AlertList(Schema):
    items = fields.List(fields.Nested(AlertSchema))
    next = fields.String(allow_none=True)


class Dashboard(Schema):
    cards = fields.List(fields.Nested(CardSchema))
    alerts = fields.List(fields.Nested(AlertSchema))
