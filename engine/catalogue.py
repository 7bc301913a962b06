"""What every staff-edited product catalogue shares (top-ups, add-ons, a partner's own): the
fields of an entry, the staff listing's query, and the rule that an entry's code never changes."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates

from engine.api import PageQuery
from engine.models import SERVICE_TYPES


class CatalogueQuery(PageQuery):
    """The staff listing: every entry, retired ones too, of one service type or all."""
    service_type = fields.String(load_default=None, validate=validate.OneOf(SERVICE_TYPES))


class CatalogueEntryIn(Schema):
    """The fields every catalogue entry has, as staff send them; a catalogue adds its own."""
    code = fields.String(required=True, validate=validate.Regexp(
        r"^[a-z0-9][a-z0-9._-]{0,59}$", error="Lower-case letters, digits, '.', '_' and '-' "
                                              "(up to 60)."))
    service_type = fields.String(required=True, validate=validate.OneOf(SERVICE_TYPES))
    name = fields.String(required=True, validate=validate.Length(1, 100))
    description = fields.String(load_default="", validate=validate.Length(max=1000))
    currency = fields.String(load_default="GBP", validate=validate.Regexp(
        r"^[A-Za-z]{3}$", error="An ISO 4217 code, e.g. GBP."))
    position = fields.Integer(load_default=0, validate=validate.Range(0, 10000))
    active = fields.Boolean(load_default=True)


class CataloguePatch:
    """Put before a catalogue's entry schema (``class XPatch(CataloguePatch, XIn)``): any field
    may change, except the code, which past purchases and partner integrations refer to."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("partial", True)
        super().__init__(*args, **kwargs)

    @validates("code")
    def code_stays(self, value, **kwargs):
        raise ValidationError("The code of an entry cannot change; create a new entry.")
