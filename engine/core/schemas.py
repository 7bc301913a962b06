"""The core tables as the API shows them, one shape each, for the customer's and the staff's
faces alike (a staff view adds its own fields by subclassing)."""

from __future__ import annotations

from marshmallow import Schema, fields

from engine import roles


class ContactOut(Schema):
    id = fields.Integer()
    first_name = fields.String()
    last_name = fields.String()
    email = fields.String()
    phone = fields.String()
    role = fields.String(metadata={"description": "their job, as the operator noted it"})
    is_primary = fields.Boolean()
    access = fields.Function(
        roles.of,
        metadata={
            "enum": list(roles.ROLES),
            "description": "what they may do on the account (ACCT-7): "
            "primary, manager (granted by the primary) or member",
        },
    )


class SiteOut(Schema):
    id = fields.Integer()
    label = fields.String()
    line1 = fields.String()
    line2 = fields.String()
    city = fields.String()
    postcode = fields.String()
    country = fields.String()
