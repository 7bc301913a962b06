"""The core tables as the API shows them, one shape each, for the customer's and the staff's
faces alike (a staff view adds its own fields by subclassing)."""
from __future__ import annotations

from marshmallow import Schema, fields


class ContactOut(Schema):
    id = fields.Integer()
    first_name = fields.String()
    last_name = fields.String()
    email = fields.String()
    phone = fields.String()
    role = fields.String()
    is_primary = fields.Boolean()


class SiteOut(Schema):
    id = fields.Integer()
    label = fields.String()
    line1 = fields.String()
    line2 = fields.String()
    city = fields.String()
    postcode = fields.String()
    country = fields.String()
