"""The ``[staff]`` settings table."""

from __future__ import annotations

from marshmallow import Schema, fields


class StaffSettings(Schema):
    require_2fa = fields.Boolean(
        load_default=False,
        metadata={
            "description": "every staff account must use two-step sign-in (SEC-5): after the "
            "password, a staff member without it can only set it up"
        },
    )
