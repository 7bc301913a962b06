"""The usage rules both faces call: balances, credits, renewal, and the usage summary (USE-1..6)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import peewee

from engine.api import money
from engine.db import locked_transaction, utcnow
from engine.models import Service
from engine.registry import Balance, Credit
from plugins.usage.history import daily as daily_totals
from plugins.usage.models import BALANCE_TYPES, UNITS, Bucket, LedgerEntry, UsageEvent
from plugins.usage.rating import is_low, load_slots, lock_services, threshold_for, totals
from plugins.usage.settings import Policy

LIVE = ("active", "suspended")
FORECAST_DAYS = 7  # the "current rate" is the average of the last week


# -- balances (the ``service_balances`` hook) --------------------------------------------


def buckets_of(service_id: int, policy: Policy, now: datetime, include_expired: bool = False):
    """A service's buckets in consumption order (USE-2, USE-3)."""
    query = Bucket.select().where(Bucket.service == service_id)
    if not include_expired:
        query = query.where(Bucket.expires_at.is_null() | (Bucket.expires_at > now))
    return sorted(query, key=lambda b: policy.order_key(b.weight, b.expires_at, b.id))


def as_balance(b: Bucket) -> Balance:
    return Balance(
        id=b.id,
        type=b.type,
        remaining=b.remaining,
        initial=b.initial,
        unit=b.unit,
        weight=b.weight,
        expires_at=b.expires_at,
        name=b.name,
    )


def balances(app, service: Service, now: datetime | None = None) -> list[Balance]:
    return [as_balance(b) for b in buckets_of(service.id, Policy.of(app), now or utcnow())]


# -- credits and renewal -------------------------------------------------------------------


def unit_for(balance_type: str, service: Service) -> str:
    return service.currency if balance_type == "monetary" else UNITS[balance_type]


def credit(app, service: Service, item: Credit) -> Bucket:
    """Add a top-up, refund or bonus as a new bucket (the ``credit_balance`` hook).

    Runs in the caller's transaction and locks the service first. A credit whose
    ``reference`` was already applied to this service returns the same bucket:
    one purchase never credits twice.
    """
    if item.type not in BALANCE_TYPES:
        raise ValueError(
            f"credit type must be one of {', '.join(BALANCE_TYPES)}, not {item.type!r}"
        )
    if item.amount <= 0:
        raise ValueError("credit amount must be positive")
    unit = unit_for(item.type, service)
    if item.unit and item.unit.upper() != unit.upper():
        raise ValueError(f"a {item.type} credit is in {unit}, not {item.unit}")
    with locked_transaction():
        lock_services([service.id])
        if item.reference:
            found = Bucket.get_or_none(
                (Bucket.service == service.id) & (Bucket.reference == item.reference)
            )
            if found is not None:
                return found
        default_name = {
            "monetary": "Credit",
            "data": "Data top-up",
            "voice": "Minutes top-up",
            "sms": "Texts top-up",
            "mms": "Picture messages top-up",
        }[item.type]
        return Bucket.create(
            service=service.id,
            type=item.type,
            scope="any",
            name=item.name or default_name,
            source="topup",
            weight=item.weight,
            initial=item.amount,
            remaining=item.amount,
            unit=unit,
            expires_at=item.expires_at,
            reference=item.reference,
        )


def refill_plan(service: Service, now: datetime | None = None) -> int:
    """Renewal: refill the base plan's buckets to their initial amount, with a ledger row each.

    Call with the service locked (the renewal transaction holds it). Returns the
    number of buckets refilled.
    """
    now = now or utcnow()
    reference = f"renewal:{service.period_start:%Y-%m-%d}"
    refilled = 0
    for b in Bucket.select().where((Bucket.service == service.id) & Bucket.renewable):
        delta = b.initial - b.remaining
        if delta:
            LedgerEntry.create(
                bucket=b.id, kind="renewal", delta=delta, reference=reference, created_at=now
            )
            Bucket.update(remaining=b.initial).where(Bucket.id == b.id).execute()
            refilled += 1
    return refilled


# -- the usage summary (USE-2..6) ---------------------------------------------------------


def period_start_of(service: Service, tz: ZoneInfo, now: datetime) -> datetime:
    """Since the last renewal; a service that never renews counts from the start of the month."""
    if service.renews_at is not None:
        return service.period_start
    local = now.astimezone(tz)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return max(start, service.created_at)


def used_since(service_id: int, since: datetime) -> list[dict[str, Any]]:
    """Usage totals since ``since``, grouped by type, destination and the international flag."""
    rows = (
        UsageEvent.select(
            UsageEvent.type,
            UsageEvent.destination,
            UsageEvent.international,
            peewee.fn.SUM(UsageEvent.quantity),
            peewee.fn.SUM(UsageEvent.overage),
            peewee.fn.SUM(UsageEvent.charged),
            peewee.fn.COUNT(UsageEvent.id),
        )
        .where((UsageEvent.service == service_id) & (UsageEvent.occurred_at >= since))
        .group_by(UsageEvent.type, UsageEvent.destination, UsageEvent.international)
        .tuples()
    )
    return [
        {
            "type": t,
            "destination": d,
            "international": bool(i),
            "quantity": int(q or 0),
            "overage": int(o or 0),
            "charged": int(c or 0),
            "count": n,
        }
        for t, d, i, q, o, c, n in rows
    ]


def history(service_id: int, days: int, tz: ZoneInfo, now: datetime) -> list[dict]:
    """Daily usage per type for the last ``days`` days, in the customer's time zone."""
    today = now.astimezone(tz).date()
    return daily_totals(service_id, today - timedelta(days=days - 1), today, tz)


def forecast(
    remaining: int,
    daily: list[int],
    ends_at: datetime | None,
    now: datetime,
    buckets: list[dict] | None = None,
) -> dict:
    """When a balance runs out at the average rate of the last week (or fewer days, if newer).

    With ``buckets`` (``remaining`` and ``expires_at`` each, in consumption order), a bucket
    that expires before it would be used up stops counting at its expiry (USE-8): the
    balance runs out sooner than its total suggests.
    """
    recent = daily[-FORECAST_DAYS:] or [0]
    rate = sum(recent) / len(recent)
    if rate <= 0 or remaining <= 0:
        return {
            "daily_rate": round(rate),
            "runs_out_at": now if remaining <= 0 and rate > 0 else None,
            "before_renewal": remaining <= 0 and rate > 0,
        }
    runs_out = (
        _depleted_at(buckets, rate, now) if buckets else now + timedelta(days=remaining / rate)
    )
    return {
        "daily_rate": round(rate),
        "runs_out_at": runs_out,
        "before_renewal": ends_at is None or runs_out < ends_at,
    }


def _depleted_at(buckets: list[dict], rate: float, now: datetime) -> datetime:
    """Use the buckets one after another at ``rate`` a day; each lapses at its expiry."""
    at = now
    for b in buckets:
        if b["remaining"] <= 0 or (b["expires_at"] is not None and b["expires_at"] <= at):
            continue
        done = at + timedelta(days=b["remaining"] / rate)
        at = min(done, b["expires_at"]) if b["expires_at"] is not None else done
    return at


def bucket_row(b: Bucket, service: Service) -> dict:
    return {
        "id": b.id,
        "type": b.type,
        "name": b.name,
        "source": b.source,
        "scope": b.scope,
        "weight": b.weight,
        "remaining": b.remaining,
        "initial": b.initial,
        "unit": b.unit,
        "expires_at": b.expires_at,
        "renews_at": service.renews_at if b.renewable else None,
    }


def _group(kind: str, buckets: list[Bucket], service: Service, unit: str) -> dict:
    remaining = sum(b.remaining for b in buckets)
    initial = sum(b.initial for b in buckets)
    expiries = [b.expires_at for b in buckets if b.expires_at and b.remaining > 0]
    return {
        "type": kind,
        "unit": unit,
        "remaining": remaining,
        "initial": initial,
        "percent_left": round(100 * remaining / initial, 1) if initial else None,
        "expires_at": min(expiries) if expiries else None,
        "buckets": [bucket_row(b, service) for b in buckets],
    }


def summary(
    app, service: Service, *, days: int = 30, tz: str = "UTC", now: datetime | None = None
) -> dict:
    """Everything the usage page and ``GET /services/{id}/usage`` show (USE-1..6)."""
    now = now or utcnow()
    zone = zone_of(tz)
    policy = Policy.of(app)
    since = period_start_of(service, zone, now)
    buckets = buckets_of(service.id, policy, now)
    used = used_since(service.id, since)
    daily = history(service.id, max(days, FORECAST_DAYS), zone, now)
    ends_at = service.renews_at or service.expires_at

    def used_where(**match) -> int:
        return sum(u["quantity"] for u in used if all(u[k] == v for k, v in match.items()))

    groups = []
    for kind in BALANCE_TYPES:
        mine = [b for b in buckets if b.type == kind]
        domestic = [b for b in mine if b.scope != "international"]
        abroad = [b for b in mine if b.scope == "international"]
        has_usage = any(u["type"] == kind for u in used)
        if kind == "mms" and not mine:
            continue  # shown inside the SMS group
        if not mine and not has_usage and kind != "monetary":
            continue
        if kind == "monetary" and not mine and not any(u["charged"] for u in used):
            continue
        group = _group(
            kind, domestic if kind in ("voice", "sms") else mine, service, unit_for(kind, service)
        )
        group["overage_this_period"] = sum(u["overage"] for u in used if u["type"] == kind)
        if kind == "voice":
            group["used_this_period"] = used_where(type="voice") - used_where(
                type="voice", destination="international"
            )
            group["by_destination"] = {
                d: used_where(type="voice", destination=d)
                for d in ("onnet", "offnet", "international", "special")
            }
            group["international"] = {
                **_group(kind, abroad, service, group["unit"]),
                "used_this_period": group["by_destination"]["international"],
            }
        elif kind == "sms":
            group["used_this_period"] = used_where(type="sms", international=False)
            group["mms_used_this_period"] = used_where(type="mms")
            group["mms_counts_against_sms"] = policy.mms_uses_sms
            group["international"] = {
                **_group(kind, abroad, service, group["unit"]),
                "used_this_period": used_where(type="sms", international=True),
            }
        elif kind == "monetary":
            group["used_this_period"] = used_where(type="monetary") + sum(
                u["charged"] for u in used
            )
            group["last_topup"] = last_topup(service)
            group["auto_topup"] = app.plugins.hook.auto_topup_status(app=app, service=service)
        else:
            group["used_this_period"] = used_where(type=kind)
        threshold = threshold_for(app, service.customer_id, kind)
        group["threshold"] = threshold
        group["low"] = bool(mine) and is_low(kind, group["remaining"], group["initial"], threshold)
        spend = [d[kind] + (d["charged"] if kind == "monetary" else 0) for d in daily]
        if kind in ("voice", "sms") and group["initial"] == 0:
            spend = [0]  # no allowance to run out of: calls and texts are paid from credit
        group["forecast"] = forecast(group["remaining"], spend, ends_at, now, group["buckets"])
        groups.append(group)
    live = service.status in LIVE
    # An ended service (expired, cancelled) has nothing left to use and renews no more: its
    # history stays, its balances are not "live", "low" or forecast (SVC-1/2).
    return {
        "service_id": service.id,
        "as_of": now,
        "period_start": since,
        "renews_at": service.renews_at if live else None,
        "ended": not live,
        "balances": groups if live else [],
        "history": {"days": days, "items": daily[-days:]},
    }


def last_topup(service: Service) -> dict | None:
    b = (
        Bucket.select()
        .where(
            (Bucket.service == service.id)
            & (Bucket.type == "monetary")
            & (Bucket.source == "topup")
        )
        .order_by(Bucket.created_at.desc(), Bucket.id.desc())
        .first()
    )
    return {"amount": money(b.initial, b.unit), "at": b.created_at} if b else None


def zone_of(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz or "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


# -- across a customer's services (dashboard card, alerts, the Usage section) ------------------


def customer_totals(app, customer_id: int, now: datetime | None = None) -> list[dict]:
    """Per live service: its balance totals by type (one query for the buckets)."""
    now = now or utcnow()
    services = list(
        Service.select()
        .where((Service.customer == customer_id) & Service.status.in_(LIVE))
        .order_by(Service.id)
    )
    slots = load_slots([s.id for s in services], Policy.of(app), now) if services else {}
    out = []
    for s in services:
        t = totals(slots.get(s.id, []), now)
        out.append(
            {
                "service": s,
                "totals": [
                    {
                        "type": k,
                        "remaining": t[k][0],
                        "initial": t[k][1],
                        "unit": t[k][2],
                        "percent_left": round(100 * t[k][0] / t[k][1], 1) if t[k][1] else None,
                    }
                    for k in BALANCE_TYPES
                    if k in t
                ],
            }
        )
    return out


def low_balances(
    app, customer_id: int, now: datetime | None = None, rows: list[dict] | None = None
) -> list[tuple]:
    """(service, total) pairs below the customer's threshold, for the in-portal alert.

    ``rows``: ``customer_totals`` already read in this request (the dashboard's card).
    """
    found, thresholds = [], {}
    for row in rows if rows is not None else customer_totals(app, customer_id, now):
        for t in row["totals"]:
            kind = t["type"]
            if kind not in thresholds:
                thresholds[kind] = threshold_for(app, customer_id, kind)
            if is_low(kind, t["remaining"], t["initial"], thresholds[kind]):
                found.append((row["service"], t, thresholds[kind]))
    return found


def calls(service_id: int):
    """Voice usage events of a service, newest first (USE-4 call records)."""
    return UsageEvent.select().where(
        (UsageEvent.service == service_id) & (UsageEvent.type == "voice")
    )
