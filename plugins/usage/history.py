"""Usage history for a range of days (USE-8): per-day totals, the events newest first, the CSV.

Days are the customer's (their time zone), both ends included, at most ``MAX_DAYS``
at a time. Without ``from`` and ``to`` the range is the service's current period up to
today. The portal page, its CSV download and the API all call these.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Iterator
from zoneinfo import ZoneInfo

from engine import csvexport, dayrange
from engine.i18n import N_
from engine.money import plain
from engine.models import Service
from plugins.usage.models import BALANCE_TYPES, UNITS, UsageEvent

#: The longest range one page, answer or CSV covers: a year, leap day included.
MAX_DAYS = 366
TOO_LONG = N_("Choose a range of at most 366 days.")
#: When only ``to`` is given and it is before the current period: the 30 days ending then.
DEFAULT_DAYS = 30

CSV_COLUMNS = (
    "occurred_at",
    "type",
    "quantity",
    "unit",
    "destination",
    "international",
    "counterparty",
    "covered",
    "charged",
    "currency",
    "overage",
    "event_id",
)


def resolve(
    period_start: datetime,
    zone: ZoneInfo,
    now: datetime,
    start: date | None,
    end: date | None,
    days: int | None = None,
) -> tuple[date, date]:
    """The days to show: those asked for, else the last ``days``, else the current period."""
    today = now.astimezone(zone).date()
    if start is None and end is None and days:
        return today - timedelta(days=days - 1), today
    last = end if end is not None else max(today, start or today)
    if start is None:
        start = period_start.astimezone(zone).date()
        if start > last:
            start = last - timedelta(days=DEFAULT_DAYS - 1)
    return start, last


def range_errors(start: date, end: date) -> dict[str, list[str]]:
    """Field messages for a range that cannot be shown (reversed, or too long)."""
    if start > end:
        return {"from": [dayrange.REVERSED]}
    if (end - start).days + 1 > MAX_DAYS:
        return {"to": [TOO_LONG]}
    return {}


def in_range(service_id: int, start: date, end: date, zone: ZoneInfo, kind: str | None = None):
    """The service's events on the days ``start``..``end`` in ``zone`` (one index range)."""
    low, high = dayrange.bounds(start, end, zone)
    query = UsageEvent.select().where(
        (UsageEvent.service == service_id)
        & (UsageEvent.occurred_at >= low)
        & (UsageEvent.occurred_at < high)
    )
    return query.where(UsageEvent.type == kind) if kind else query


def daily(service_id: int, start: date, end: date, zone: ZoneInfo) -> list[dict]:
    """Usage per type for each day ``start``..``end`` in ``zone``, days without use included."""
    count = (end - start).days + 1
    per_day: dict = {start + timedelta(days=i): defaultdict(int) for i in range(count)}
    rows = (
        in_range(service_id, start, end, zone)
        .select(UsageEvent.occurred_at, UsageEvent.type, UsageEvent.quantity, UsageEvent.charged)
        .tuples()
        .iterator()
    )
    for at, kind, quantity, charged in rows:
        day = per_day.get(at.astimezone(zone).date())
        if day is None:
            continue
        day[kind] += quantity
        if charged:
            day["charged"] += charged
    return [
        {"date": d.isoformat(), **{k: v.get(k, 0) for k in (*BALANCE_TYPES, "charged")}}
        for d, v in per_day.items()
    ]


def unit_of(event: UsageEvent, service: Service) -> str:
    return service.currency if event.type == "monetary" else UNITS[event.type]


def csv_name(service: Service, start: date, end: date) -> str:
    return f"usage-{service.id}-{start}-{end}.csv"


def csv_rows(
    service: Service, start: date, end: date, zone: ZoneInfo, kind: str | None = None
) -> Iterator[bytes]:
    """The events of the range as CSV, newest first, streamed a few hundred lines at a time.

    Times are local to ``zone`` with their offset; quantities in the type's unit
    (bytes, seconds, messages, or minor units for monetary events); ``charged`` is
    money in major units ("0.25"). The number called and the event id came from
    outside, so they are written formula-safe.
    """
    query = in_range(service.id, start, end, zone, kind).order_by(
        UsageEvent.occurred_at.desc(), UsageEvent.id.desc()
    )

    def rows() -> Iterator[list]:
        for e in query.iterator():
            yield [
                e.occurred_at.astimezone(zone).isoformat(timespec="seconds"),
                e.type,
                e.quantity,
                unit_of(e, service),
                e.destination,
                "true" if e.international else "false",
                csvexport.safe(e.counterparty),
                e.covered,
                plain(e.charged, service.currency),
                service.currency,
                e.overage,
                csvexport.safe(e.event_id),
            ]

    return csvexport.stream(CSV_COLUMNS, rows())
