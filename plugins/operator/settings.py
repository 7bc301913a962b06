"""The ``[operator]`` settings table."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class OperatorSettings(Schema):
    token_rate = fields.Integer(
        load_default=600,
        validate=validate.Range(1, 1_000_000),
        metadata={
            "description": "operator API requests a minute per service token (INT-1); a token "
            "made with its own rate keeps that one; over it answers 429 with Retry-After"
        },
    )
    invitation_days = fields.Integer(
        load_default=7,
        validate=validate.Range(1, 30),
        metadata={"description": "days an invitation link to the portal works (INT-2)"},
    )
