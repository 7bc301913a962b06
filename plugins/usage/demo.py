"""Demo balances and 90 days of realistic usage, rated through the real rating code.

The history is simulated in time order: plan buckets refill on each past
renewal date, top-ups and promotions appear on their day, and each day's
events are rated as one batch "as of" the end of that day, so the balances,
the ledger and the events are exactly what production rating would have left.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from engine.core.demo import demo_context
from engine.db import locked_transaction, utcnow
from engine.models import Service
from engine.registry import Credit
from plugins.usage.models import Bucket
from plugins.usage.grants import upsert as upsert_bucket
from plugins.usage.rating import UsageIn, lock_services, rate
from plugins.usage.service import credit, refill_plan

GB, MB, MIN = 10**9, 10**6, 60
DAYS = 90

#: Base-plan buckets per demo service: (type, scope, name, amount).
MOBILE_20 = [
    ("data", "any", "20 GB data", 20 * GB),
    ("voice", "domestic", "UK minutes", 500 * MIN),
    ("voice", "international", "International minutes", 60 * MIN),
    ("sms", "domestic", "Texts", 1000),
]
MOBILE_10 = [
    ("data", "any", "10 GB data", 10 * GB),
    ("voice", "domestic", "UK minutes", 1000 * MIN),
    ("sms", "domestic", "Texts", 500),
]
FIBRE = [("data", "any", "Fair use allowance", 2000 * GB)]
PLANS = {
    "alice_mobile": MOBILE_20,
    "alice_broadband": FIBRE,
    "bob_mobile": MOBILE_10,
    "bob_mobile_2": MOBILE_10,
    "bob_broadband": FIBRE,
    "bob_old_mobile": MOBILE_10,
}

#: How each service is used: daily data (bytes), calls and texts per day, when it stopped.
PROFILES = {
    "alice_mobile": dict(
        kind="mobile", data=0.5 * GB, calls=3.5, texts=5, mix=(0.3, 0.58, 0.08, 0.04)
    ),
    "alice_broadband": dict(kind="broadband", data=25 * GB),
    "alice_prepaid": dict(kind="mobile", data=12 * MB, calls=0.6, texts=1, mix=(0.2, 0.8, 0, 0)),
    "bob_mobile": dict(
        kind="mobile", data=0.36 * GB, calls=6, texts=4, mix=(0.4, 0.55, 0.03, 0.02)
    ),
    "bob_mobile_2": dict(
        kind="mobile", data=0.3 * GB, calls=4, texts=3, mix=(0.4, 0.6, 0, 0), until=30
    ),
    "bob_broadband": dict(kind="broadband", data=40 * GB),
    "bob_old_mobile": dict(
        kind="mobile", data=0.25 * GB, calls=3, texts=2, mix=(0.5, 0.5, 0, 0), until=20
    ),
}
DESTINATIONS = ("onnet", "offnet", "international", "special")


def seed(app, demo: dict) -> None:
    services: dict[str, Service] = demo.get("services") or {}
    if not services:
        return
    rng = random.Random(20260301)
    ctx = demo_context(app)
    now = utcnow().replace(microsecond=0)
    start = now - timedelta(days=DAYS)
    markers: list[tuple[datetime, int, tuple[Any, ...] | None]] = []
    for key, plan in PLANS.items():
        s = services.get(key)
        if s is None:
            continue
        for n, (kind, scope, name, amount) in enumerate(plan, 1):
            # Granted as the operator's systems grant them (the operator API's rules), then
            # back-dated to the start of the simulated window.
            values = {"service_external_id": s.external_id, "type": kind, "scope": scope}
            values |= {"name": name, "source": "plan", "weight": 30, "allowance": amount}
            bucket = upsert_bucket(ctx, f"{s.external_id}-{n}", {**values, "renewable": True})
            Bucket.update(created_at=start).where(Bucket.id == bucket.row.id).execute()
        for boundary in past_renewals(s, start):
            markers.append((boundary, len(markers), ("renew", s, boundary)))
    for at, key, item in extra_credits(now):
        if key in services:
            markers.append((at, len(markers), ("credit", services[key], item)))
    events = []
    for key, profile in PROFILES.items():
        if key in services:
            events += usage_for(rng, services[key], profile, start, now)
    events.sort(key=lambda e: e.occurred_at)
    for day in range(1, DAYS + 1):
        markers.append((start + timedelta(days=day), len(markers), None))
    markers.sort(key=lambda m: (m[0], m[1]))
    i = 0
    for at, _, action in markers:
        if at > now:
            break
        j = i
        while j < len(events) and events[j].occurred_at < at:
            j += 1
        if j > i:
            rate(app, events[i:j], now=at, quiet=True)
            i = j
        if action is not None:
            apply_marker(app, action, at)
    if i < len(events):
        rate(app, events[i:], now=now)  # today's usage: the hooks fire as in production
    demo["usage_events"] = len(events)


def past_renewals(service: Service, start: datetime) -> list[datetime]:
    """The renewal dates of the simulated window: the current period start and those before."""
    step = timedelta(days=service.product.period_days)
    out: list[datetime] = []
    at = service.period_start
    if service.renews_at is None:
        return out
    while at > start:
        out.append(at)
        at -= step
    return sorted(out)


def extra_credits(now: datetime) -> list[tuple[datetime, str, Credit]]:
    """Top-ups and promotions bought during the window (a prepaid's credit among them)."""
    day = timedelta(days=1)
    return [
        (
            now - 12 * day,
            "alice_mobile",
            Credit(
                "data",
                2 * GB,
                "bytes",
                weight=10,
                expires_at=now + 18 * day,
                name="Bonus 2 GB",
                reference="demo-promo-1",
            ),
        ),
        (
            now - 10 * day,
            "alice_mobile",
            Credit(
                "data",
                5 * GB,
                "bytes",
                weight=20,
                expires_at=now + 20 * day,
                name="5 GB top-up",
                reference="demo-topup-1",
            ),
        ),
        (
            now - 90 * day,
            "alice_prepaid",
            Credit("monetary", 1500, "GBP", name="Credit", reference="demo-credit-1"),
        ),
        (
            now - 55 * day,
            "alice_prepaid",
            Credit("monetary", 1000, "GBP", name="Credit", reference="demo-credit-2"),
        ),
        (
            now - 25 * day,
            "alice_prepaid",
            Credit("monetary", 1000, "GBP", name="Credit", reference="demo-credit-3"),
        ),
        (
            now - 20 * day,
            "alice_prepaid",
            Credit(
                "data",
                1 * GB,
                "bytes",
                weight=20,
                expires_at=now + 10 * day,
                name="1 GB bundle",
                reference="demo-bundle-1",
            ),
        ),
        (
            now - 4 * day,
            "alice_prepaid",
            Credit("monetary", 1000, "GBP", name="Credit", reference="demo-credit-4"),
        ),
    ]


def apply_marker(app, action: tuple, at: datetime) -> None:
    kind, service, value = action
    with locked_transaction():
        lock_services([service.id])
        if kind == "renew":
            refill_plan(Service(id=service.id, period_start=value), now=at)
        else:
            bucket = credit(app, service, value)
            Bucket.update(created_at=at).where(Bucket.id == bucket.id).execute()


def usage_for(
    rng: random.Random, service: Service, profile: dict, start: datetime, now: datetime
) -> list[UsageIn]:
    """Realistic days: busier weekends, sessions of varied size, calls of varied length."""
    out: list[UsageIn] = []
    stop = now - timedelta(days=profile.get("until", 0))
    n = 0

    def add(kind, quantity, at, **extra):
        nonlocal n
        if at >= stop or quantity <= 0:
            return
        n += 1
        out.append(UsageIn(f"demo-{service.id}-{n}", service.id, kind, int(quantity), at, **extra))

    for d in range(DAYS + 1):
        day = start + timedelta(days=d)
        weekend = day.weekday() >= 5
        busy = (1.3 if weekend else 1.0) * rng.uniform(0.6, 1.4)
        sessions = rng.randint(10, 16) if profile["kind"] == "broadband" else rng.randint(3, 10)
        shares = [rng.random() ** 2 for _ in range(sessions)]
        for share in shares:
            add("data", profile["data"] * busy * share / sum(shares), moment(rng, day))
        if profile["kind"] != "mobile":
            continue
        for _ in range(poisson(rng, profile["calls"] * busy)):
            dest = rng.choices(DESTINATIONS, weights=profile["mix"])[0]
            add(
                "voice",
                min(45 * MIN, max(5, rng.lognormvariate(4.6, 0.9))),
                moment(rng, day),
                destination=dest,
                international=dest == "international",
                counterparty=number(rng, dest),
            )
        for _ in range(poisson(rng, profile["texts"] * busy)):
            abroad = rng.random() < 0.05
            add(
                "sms",
                1,
                moment(rng, day),
                international=abroad,
                counterparty=number(rng, "international" if abroad else "offnet"),
            )
        if rng.random() < 0.12:
            add("mms", 1, moment(rng, day), counterparty=number(rng, "offnet"))
    return out


def moment(rng: random.Random, day: datetime) -> datetime:
    """A time of day weighted to waking hours."""
    hour = min(23, max(0, int(rng.gauss(15, 4))))
    return day.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60))


def poisson(rng: random.Random, mean: float) -> int:
    count, total = 0, rng.expovariate(1.0)
    while total < mean:
        count += 1
        total += rng.expovariate(1.0)
    return count


def number(rng: random.Random, destination: str) -> str:
    if destination == "international":
        return (
            rng.choice(["+33 6 ", "+49 151 ", "+34 612 ", "+1 415 "])
            + f"{rng.randrange(10**6):06d}"
        )
    if destination == "special":
        return f"+44 871 {rng.randrange(10**6):06d}"
    return f"+44 7700 900{rng.randrange(1000):03d}"
