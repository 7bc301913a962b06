"""Many writers rating usage on one service at once lose nothing and charge nothing twice (USE-7).

Runs on SQLite and on PostgreSQL (the ``app`` fixture). Each thread rates its
own batches and re-sends some of another thread's events at the same time.
"""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest

from engine import db
from engine.db import utcnow
from engine.registry import Credit
from plugins.usage.models import Bucket, LedgerEntry, UsageEvent
from plugins.usage.rating import rate
from usage_helpers import bucket, customer_user, event, service_for

THREADS, BATCHES, PER_BATCH = 8, 6, 25


@pytest.mark.spec("USE-7", "USE-3")
def test_many_threads_rating_one_service_lose_nothing(app):
    service = service_for(customer_user(), service_type="prepaid")
    bucket(service, amount=200_000, weight=30)
    bucket(service, amount=50_000, weight=10)
    app.plugins.hook.credit_balance(
        app=app, service=service, credit=Credit("monetary", 1_000, "GBP", reference="c")
    )
    rng = random.Random(7)
    now = utcnow()
    plans = {
        t: [
            [
                event(service, rng.randint(1, 3_000_000), id=f"t{t}-b{b}-e{i}", occurred_at=now)
                for i in range(PER_BATCH)
            ]
            for b in range(BATCHES)
        ]
        for t in range(THREADS)
    }
    for t in range(THREADS):  # each thread also re-sends a neighbour's batches
        for b in range(BATCHES):
            plans[t][b] = plans[t][b] + plans[(t + 1) % THREADS][b][:5]
    outcomes, errors = [], []
    start = threading.Barrier(THREADS)

    def work(t):
        try:
            start.wait()
            with db.connection():
                for batch in plans[t]:
                    outcomes.extend(rate(app, batch))
        except Exception as exc:  # reported below: the test must see every failure
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert errors == []
    unique = {e.id: e for batches in plans.values() for batch in batches for e in batch}
    rated = Counter(o.id for o in outcomes if o.status == "rated")
    assert set(rated) == set(unique) and set(rated.values()) == {1}  # each event exactly once
    assert UsageEvent.select().count() == len(unique)

    buckets = list(Bucket.select().where(Bucket.service == service.id))
    for b in buckets:
        ledger = sum(e.delta for e in LedgerEntry.select().where(LedgerEntry.bucket == b.id))
        assert b.remaining >= 0 and b.remaining == b.initial + ledger
    events = list(UsageEvent.select())
    data = [b for b in buckets if b.type == "data"]
    credit = next(b for b in buckets if b.type == "monetary")
    assert sum(e.covered for e in events) == sum(b.initial - b.remaining for b in data)
    assert sum(e.charged for e in events) == credit.initial - credit.remaining
    assert all(b.remaining == 0 for b in data) and credit.remaining == 0  # all used up, no more
