"""Shapes of the usage API: balances, the usage summary, call records, and usage batches."""

from __future__ import annotations

from datetime import timedelta, timezone

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from engine.api import AwareDateTime, Id, MoneySchema, PageQuery, page_schema
from engine.dayrange import DayRange
from engine.db import utcnow
from engine.i18n import N_
from engine.models import EXTERNAL_ID_MAX
from plugins.usage.models import BALANCE_TYPES, DESTINATIONS, EVENT_TYPES, SCOPES, SOURCES

#: How far ahead of the server's clock an event may claim to have happened (clock skew).
FUTURE_SKEW = timedelta(minutes=10)


# -- reading balances and usage ---------------------------------------------------------------


class BalanceSchema(Schema):
    """One bucket, as the API outline shapes a balance row."""

    id = fields.Integer()
    type = fields.String(metadata={"enum": list(BALANCE_TYPES)})
    name = fields.String()
    source = fields.String(metadata={"enum": list(SOURCES)})
    scope = fields.String(metadata={"enum": list(SCOPES)})
    weight = fields.Integer()
    remaining = fields.Integer()
    initial = fields.Integer()
    unit = fields.String(metadata={"description": "bytes, seconds, messages, or an ISO currency"})
    expires_at = fields.DateTime(allow_none=True)
    renews_at = fields.DateTime(
        allow_none=True, metadata={"description": "base-plan buckets refill on this date"}
    )


class BalanceList(Schema):
    items = fields.List(
        fields.Nested(BalanceSchema),
        metadata={"description": "unexpired buckets in consumption order (USE-3)"},
    )
    next = fields.String(allow_none=True)


class BalancesQuery(Schema):
    include_expired = fields.Boolean(load_default=False)


class ForecastSchema(Schema):
    daily_rate = fields.Integer(metadata={"description": "average use per day over the last week"})
    runs_out_at = fields.DateTime(
        allow_none=True,
        metadata={"description": "when the balance runs out at that rate; null if it does not"},
    )
    before_renewal = fields.Boolean(
        metadata={"description": "true when it runs out before the renewal or expiry date"}
    )


class SubBalanceSchema(Schema):
    remaining = fields.Integer()
    initial = fields.Integer()
    used_this_period = fields.Integer()
    expires_at = fields.DateTime(allow_none=True)
    buckets = fields.List(fields.Nested(BalanceSchema))


class AutoTopupStatusSchema(Schema):
    enabled = fields.Boolean()
    threshold = fields.Integer()
    amount = fields.Integer()
    currency = fields.String()


class LastTopupSchema(Schema):
    amount = fields.Nested(MoneySchema)
    at = fields.DateTime()


class BalanceGroupSchema(Schema):
    type = fields.String(metadata={"enum": list(BALANCE_TYPES)})
    unit = fields.String()
    remaining = fields.Integer()
    initial = fields.Integer()
    percent_left = fields.Float(allow_none=True)
    used_this_period = fields.Integer()
    overage_this_period = fields.Integer(metadata={"description": "usage nothing paid for"})
    expires_at = fields.DateTime(allow_none=True, metadata={"description": "earliest expiry"})
    low = fields.Boolean()
    threshold = fields.Integer()
    forecast = fields.Nested(ForecastSchema)
    buckets = fields.List(fields.Nested(BalanceSchema))
    by_destination = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={
            "description": "voice seconds this period: onnet, offnet, international, special"
        },
    )
    international = fields.Nested(
        SubBalanceSchema,
        metadata={
            "description": "voice and SMS: international allowance and use, tracked separately"
        },
    )
    mms_used_this_period = fields.Integer()
    mms_counts_against_sms = fields.Boolean()
    last_topup = fields.Nested(LastTopupSchema, allow_none=True)
    auto_topup = fields.Nested(
        AutoTopupStatusSchema,
        allow_none=True,
        metadata={"description": "null when no plugin manages auto top-up"},
    )


class DayUsageSchema(Schema):
    date = fields.String()
    data = fields.Integer()
    voice = fields.Integer()
    sms = fields.Integer()
    mms = fields.Integer()
    monetary = fields.Integer()
    charged = fields.Integer()


class HistorySchema(Schema):
    days = fields.Integer()
    items = fields.List(fields.Nested(DayUsageSchema))


class UsageSummarySchema(Schema):
    service_id = fields.Integer()
    as_of = fields.DateTime()
    period_start = fields.DateTime()
    renews_at = fields.DateTime(allow_none=True)
    ended = fields.Boolean(
        metadata={"description": "expired or cancelled: no balances, no renewal"}
    )
    balances = fields.List(fields.Nested(BalanceGroupSchema))
    history = fields.Nested(HistorySchema)


class UsageQuery(Schema):
    days = fields.Integer(load_default=30, validate=validate.OneOf([30, 90]))


class CallSchema(Schema):
    id = fields.String(attribute="event_id")
    occurred_at = fields.DateTime()
    counterparty = fields.String()
    destination = fields.String(metadata={"enum": list(DESTINATIONS)})
    seconds = fields.Integer(attribute="quantity")
    covered = fields.Integer()
    charged = fields.Integer()
    overage = fields.Integer()


CallPage = page_schema(CallSchema, "CallPage")


# -- usage history for a range of days (USE-8) --------------------------------------------------

RANGE_NOTE = (
    "`from` and `to` are days in your time zone, both included, at most 366 days apart; "
    "without them, the service's current period up to today."
)


class UsageRange(DayRange):
    """Which days (USE-8): the customer's, both included; the current period when absent."""


class UsageEventFilter(UsageRange):
    kind = fields.String(
        data_key="type",
        load_default=None,
        validate=validate.OneOf(EVENT_TYPES),
        metadata={"description": "only this type: " + ", ".join(EVENT_TYPES)},
    )


class UsageEventQuery(PageQuery, UsageEventFilter):
    pass


class UsagePageQuery(PageQuery, UsageRange):
    """The service usage page: a range of days, or ``days`` (the last 30 or 90) as a shortcut."""

    days = fields.Integer(load_default=None, validate=validate.OneOf([30, 90]))


class UsageEventSchema(Schema):
    id = fields.String(attribute="event_id")
    occurred_at = fields.DateTime()
    type = fields.String(metadata={"enum": list(EVENT_TYPES)})
    quantity = fields.Integer(metadata={"description": "in `unit`"})
    unit = fields.String(metadata={"description": "bytes, seconds, messages, or a currency"})
    destination = fields.String(metadata={"description": "voice: " + ", ".join(DESTINATIONS)})
    international = fields.Boolean()
    counterparty = fields.String(metadata={"description": "the number called or texted"})
    covered = fields.Integer(metadata={"description": "paid from allowances, in `unit`"})
    charged = fields.Integer(metadata={"description": "taken from credit, in minor units"})
    overage = fields.Integer(metadata={"description": "nothing paid for it, in `unit`"})


class UsageEventPage(Schema):
    start = fields.Date(data_key="from", metadata={"description": "first day shown"})
    end = fields.Date(data_key="to", metadata={"description": "last day shown, included"})
    items = fields.List(fields.Nested(UsageEventSchema))
    next = fields.String(allow_none=True, metadata={"description": "cursor of the next page"})


class UsageHistorySchema(Schema):
    start = fields.Date(data_key="from", metadata={"description": "first day"})
    end = fields.Date(data_key="to", metadata={"description": "last day, included"})
    items = fields.List(fields.Nested(DayUsageSchema), metadata={"description": "one per day"})


# -- writing usage (staff) ----------------------------------------------------------------------


class UsageEventIn(Schema):
    """One usage event from the network or charging side."""

    id = fields.String(
        required=True,
        validate=validate.Length(1, 100),
        metadata={"description": "unique per event: a re-sent id is not charged again"},
    )
    service_id = Id(
        metadata={"description": "Portico's id of the service; or send `service_external_id`"}
    )
    service_external_id = fields.String(
        validate=validate.Length(1, EXTERNAL_ID_MAX),
        metadata={
            "description": "the operator's id of the service (e.g. its MSISDN, INT-3); or send "
            "`service_id`",
            "example": "447700900123",
        },
    )
    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    quantity = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(1, 10**15),
        metadata={"description": "bytes, seconds, messages, or minor units"},
    )
    occurred_at = AwareDateTime(
        required=True,
        default_timezone=timezone.utc,
        metadata={"description": "ISO 8601; without an offset it is read as UTC"},
    )
    destination = fields.String(
        load_default="",
        validate=validate.OneOf(["", *DESTINATIONS]),
        metadata={"description": "voice only"},
    )
    international = fields.Boolean(load_default=False, metadata={"description": "SMS and MMS"})
    counterparty = fields.String(load_default="", validate=validate.Length(max=40))

    @validates_schema
    def consistent(self, data, **kwargs):
        if ("service_id" in data) == ("service_external_id" in data):
            raise ValidationError(
                N_("Send either service_id or service_external_id."), "service_id"
            )
        if data.get("type") == "voice" and not data.get("destination"):
            raise ValidationError(
                N_("Voice events need a destination: onnet, offnet, international or special."),
                "destination",
            )
        if data.get("type") != "voice" and data.get("destination"):
            raise ValidationError(N_("Only voice events have a destination."), "destination")
        at = data.get("occurred_at")
        if at is not None and at > utcnow() + FUTURE_SKEW:
            raise ValidationError(N_("This time is in the future."), "occurred_at")


class UsageBatchIn(Schema):
    events = fields.List(
        fields.Nested(UsageEventIn), required=True, validate=validate.Length(min=1)
    )


class OutcomeSchema(Schema):
    id = fields.String()
    service_id = fields.Integer()
    status = fields.String(metadata={"enum": ["rated", "duplicate"]})
    covered = fields.Integer()
    charged = fields.Integer()
    overage = fields.Integer()


class BatchResultSchema(Schema):
    rated = fields.Integer()
    duplicates = fields.Integer()
    results = fields.List(fields.Nested(OutcomeSchema))
