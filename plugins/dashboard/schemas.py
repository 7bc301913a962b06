"""Shapes of the shell API."""

from marshmallow import Schema, fields, validate


class DashboardSettings(Schema):
    """``[dashboard]`` in portico.toml."""

    cache_seconds = fields.Float(
        load_default=15.0,
        validate=validate.Range(0, 3600),
        metadata={
            "description": "keep each customer's dashboard (cards and alerts) this long in each web "
            "worker; any audited change (a purchase, a payment, an edit) refreshes it "
            "at once, usage and the clock within this time; 0 turns the cache off"
        },
    )
    cache_size = fields.Integer(
        load_default=500,
        validate=validate.Range(0),
        metadata={
            "description": "dashboards kept per web worker, least recently used going first; each "
            "takes about 20-50 KB (data, API answer and page), so 500 is ~25 MB"
        },
    )


class SectionSchema(Schema):
    id = fields.String()
    title = fields.String()
    path = fields.String()
    icon = fields.String()
    order = fields.Integer()
    primary = fields.Boolean(
        metadata={"description": "A main destination: phones show it as a bottom-bar tab"}
    )
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
