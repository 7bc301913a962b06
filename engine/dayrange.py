"""A range of days as the customer sees them (BILL-4, USE-8): ``from`` and ``to``, both included.

The API and the portal pages that filter by date take the same two query fields
(``DayRange``); ``bounds`` turns the days into the moments they start and end in
the customer's time zone, so an event at 23:30 local time on the last day is in
the range even when it is already the next day in UTC.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from engine.i18n import N_

#: Days outside these cannot be turned into a moment in every time zone (year 1 at
#: UTC+14 is before the first moment a datetime holds); no portal data is that old.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9998, 12, 31)
OUT_OF_RANGE = N_("Choose a date between 1970 and 9998.")
REVERSED = N_("The start date is after the end date.")


def day_field(key: str, description: str) -> fields.Date:
    return fields.Date(
        data_key=key,
        load_default=None,
        validate=validate.Range(FIRST_DAY, LAST_DAY, error=OUT_OF_RANGE),
        metadata={"description": description},
    )


class DayRange(Schema):
    """``from`` and ``to`` (loaded as ``start``, ``end``): days in the customer's time zone,
    both included, either optional."""

    start = day_field("from", "first day, e.g. 2026-10-01")
    end = day_field("to", "last day, included")

    @validates_schema
    def ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        check_order(data.get("start"), data.get("end"))


def check_order(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and start > end:
        raise ValidationError(REVERSED, "from")


def start_of(day: date, tz: ZoneInfo | str) -> datetime:
    """The first moment of ``day`` in ``tz``."""
    return datetime.combine(day, time.min, tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz))


def bounds(
    start: date | None, end: date | None, tz: ZoneInfo | str
) -> tuple[datetime | None, datetime | None]:
    """``[first moment of start, first moment after end)`` in ``tz``; None where open."""
    return (
        start_of(start, tz) if start is not None else None,
        start_of(end + timedelta(days=1), tz) if end is not None else None,
    )
