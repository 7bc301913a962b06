"""The usage plugin's settings (``[usage]`` in portico.toml) and the rating policy read from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from marshmallow import Schema, fields, pre_load, validate

from engine.models import SERVICE_TYPES

OVERAGE_MODES = ("record", "credit")
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=timezone.utc)


class RatesSettings(Schema):
    """Prices, in minor units, of usage no allowance covers (when it is charged to credit)."""

    data_per_mb = fields.Integer(load_default=1, validate=validate.Range(min=0))
    voice_onnet_per_minute = fields.Integer(load_default=5, validate=validate.Range(min=0))
    voice_offnet_per_minute = fields.Integer(load_default=10, validate=validate.Range(min=0))
    voice_international_per_minute = fields.Integer(load_default=60, validate=validate.Range(min=0))
    voice_special_per_minute = fields.Integer(load_default=100, validate=validate.Range(min=0))
    sms = fields.Integer(load_default=10, validate=validate.Range(min=0))
    sms_international = fields.Integer(load_default=30, validate=validate.Range(min=0))
    mms = fields.Integer(load_default=30, validate=validate.Range(min=0))
    mms_international = fields.Integer(load_default=60, validate=validate.Range(min=0))


class LowBalanceSettings(Schema):
    """Default low-balance thresholds when the customer has set none (percent; monetary in minor units)."""

    data = fields.Integer(load_default=10, validate=validate.Range(0, 100))
    voice = fields.Integer(load_default=10, validate=validate.Range(0, 100))
    sms = fields.Integer(load_default=10, validate=validate.Range(0, 100))
    mms = fields.Integer(load_default=10, validate=validate.Range(0, 100))
    monetary = fields.Integer(load_default=500, validate=validate.Range(min=0))


class UsageSettings(Schema):
    """``[usage]``: how usage is rated and what the portal shows."""

    rating_order = fields.String(
        load_default="ascending",
        validate=validate.OneOf(["ascending", "descending"]),
        metadata={
            "description": "consume buckets by ascending weight (10 promo, 20 top-up, 30 plan) "
            "or descending, as some charging systems do (USE-3)"
        },
    )
    overage = fields.String(
        load_default="record",
        validate=validate.OneOf(OVERAGE_MODES),
        metadata={
            "description": "usage no bucket covers: 'record' it as "
            "overage, or 'credit' to charge it to "
            "monetary credit at [usage.rates]"
        },
    )
    overage_by_service_type = fields.Dict(
        keys=fields.String(validate=validate.OneOf(SERVICE_TYPES)),
        values=fields.String(validate=validate.OneOf(OVERAGE_MODES)),
        load_default=lambda: {"prepaid": "credit"},
        metadata={"description": "per service type override of 'overage'"},
    )
    mms_uses_sms = fields.Boolean(
        load_default=True,
        metadata={
            "description": "MMS count against the SMS allowance once MMS buckets run out (USE-5)"
        },
    )
    call_records = fields.Boolean(
        load_default=False,
        metadata={"description": "show customers their recent call records (USE-4)"},
    )
    max_batch = fields.Integer(
        load_default=10000,
        validate=validate.Range(1, 100000),
        metadata={"description": "most events one POST /api/v1/staff/usage may carry"},
    )
    rates = fields.Nested(RatesSettings)
    low_balance = fields.Nested(LowBalanceSettings)

    @pre_load
    def every_table(self, data, **kwargs):
        """Missing sub-tables load as empty ones, so their defaults apply."""
        return {"rates": {}, "low_balance": {}, **data}


@dataclass(frozen=True)
class Policy:
    """The rating rules of one deployment, read once per batch."""

    descending: bool = False
    overage: str = "record"
    overage_by_service_type: dict = field(default_factory=lambda: {"prepaid": "credit"})
    mms_uses_sms: bool = True
    rates: dict = field(default_factory=lambda: RatesSettings().load({}))

    @classmethod
    def of(cls, app) -> "Policy":
        s = settings(app)
        return cls(
            descending=s["rating_order"] == "descending",
            overage=s["overage"],
            overage_by_service_type=dict(s["overage_by_service_type"]),
            mms_uses_sms=s["mms_uses_sms"],
            rates=dict(s["rates"]),
        )

    def overage_mode(self, service_type: str) -> str:
        return self.overage_by_service_type.get(service_type, self.overage)

    def order_key(self, weight: int, expires_at: datetime | None, bucket_id: float) -> tuple:
        """USE-3: weight (ascending unless configured), then the earliest expiry, then age."""
        return (-weight if self.descending else weight, expires_at or FAR_FUTURE, bucket_id)


def settings(app) -> dict:
    values = app.settings.plugin("usage")
    return values if values else UsageSettings().load({})
