"""The batched rating path (USE-7, USE-3): a known number of statements per batch, whatever its
size, on PostgreSQL; each event once across batches, replays and chunk borders; draw order kept.

Runs on SQLite and PostgreSQL (the ``app`` fixture); PostgreSQL takes one statement per table
per batch (``= ANY`` arrays, ``COPY``, ``UPDATE ... FROM unnest``), SQLite the chunked path.
"""

from __future__ import annotations

import pytest

from engine import db
from engine.testing import sql_seen
from plugins.usage.models import Bucket, LedgerEntry, UsageEvent
from plugins.usage.rating import CHUNK, POSTGRES_STATEMENTS, rate
from usage_helpers import GB, bucket, customer_user, event, service_for


def services_with_buckets(count: int) -> list[tuple]:
    """``count`` services, each with a promo (weight 10) and a plan bucket (weight 30)."""
    out = []
    for _ in range(count):
        s = service_for(customer_user())
        promo = bucket(s, amount=GB, weight=10, name="promo")
        plan = bucket(s, amount=100 * GB, weight=30, name="plan")
        out.append((s, promo, plan))
    return out


def state() -> tuple:
    """Everything rating writes: balances, ledger and events."""
    return (
        sorted(Bucket.select(Bucket.id, Bucket.remaining).tuples()),
        sorted(
            LedgerEntry.select(
                LedgerEntry.bucket, LedgerEntry.delta, LedgerEntry.reference
            ).tuples()
        ),
        sorted(UsageEvent.select(UsageEvent.event_id, UsageEvent.covered).tuples()),
    )


@pytest.mark.spec("USE-7")
@pytest.mark.parametrize("size", [12, 3 * CHUNK])
def test_a_batch_takes_a_known_number_of_statements(app, size):
    """Lock, already-rated, buckets, events, ledger, balances: six statements; on PostgreSQL
    six whatever the size (a new round trip per batch shows here)."""
    services = services_with_buckets(4)
    events = [event(services[i % 4][0], 10**6, id=f"n-{size}-{i}") for i in range(size)]
    with sql_seen() as seen:
        outcomes = rate(app, events, quiet=True)
    assert [o.status for o in outcomes] == ["rated"] * size
    if db.is_postgres() or size <= CHUNK:
        assert len(seen) == POSTGRES_STATEMENTS, "\n".join(q[:120] for q in seen)
    else:  # SQLite: the event-id lookup and both inserts go in chunks of CHUNK
        assert len(seen) > POSTGRES_STATEMENTS
    assert sum(q.startswith("('COPY") for q in seen) == (2 if db.is_postgres() else 0)
    # A replay reads and writes nothing more than the lock and the event-id lookup.
    with sql_seen() as again:
        assert {o.status for o in rate(app, events, quiet=True)} == {"duplicate"}
    if db.is_postgres():
        assert len(again) == 2


@pytest.mark.spec("USE-7", "USE-3")
def test_batches_over_chunk_borders_rate_each_event_once_in_draw_order(app):
    """A batch of several chunks, a duplicate inside it, then a replay and a half-new batch:
    each event id is rated once, the promo bucket (USE-3: lower weight) empties before the
    plan is touched, and the ledger nets to every balance."""
    services = services_with_buckets(3)
    size = 2 * CHUNK + 7
    quantity = GB // 200  # the promo (1 GB) pays for the first 200 events of a service
    events = [event(services[i % 3][0], quantity, id=f"c-{i}") for i in range(size)]
    outcomes = rate(app, events + events[:5])
    assert [o.status for o in outcomes] == ["rated"] * size + ["duplicate"] * 5
    per_service = [sum(1 for i in range(size) if i % 3 == k) for k in range(3)]
    for (_, promo, plan), n in zip(services, per_service):
        assert Bucket.get_by_id(promo.id).remaining == 0
        assert Bucket.get_by_id(plan.id).remaining == 100 * GB - (n - 200) * quantity
        for b in (promo, plan):
            deltas = LedgerEntry.select(LedgerEntry.delta).where(LedgerEntry.bucket == b.id)
            assert Bucket.get_by_id(b.id).remaining == b.initial + sum(e.delta for e in deltas)
    before = state()
    assert {o.status for o in rate(app, events)} == {"duplicate"}
    assert state() == before
    more = [event(services[0][0], quantity, id=f"c-more-{i}") for i in range(CHUNK)]
    mixed = rate(app, events[:CHUNK] + more)
    assert [o.status for o in mixed] == ["duplicate"] * CHUNK + ["rated"] * CHUNK
    assert UsageEvent.select().count() == size + CHUNK
    refs = [r for (r,) in LedgerEntry.select(LedgerEntry.reference).tuples()]
    assert len(refs) == len(set(refs)) == size + CHUNK  # one ledger row each: no split here


@pytest.mark.spec("USE-7")
def test_text_from_outside_is_written_as_given(app):
    """Event ids and numbers with tabs, newlines and backslashes survive the bulk write."""
    s, promo, _ = services_with_buckets(1)[0]
    odd = "a\tb\\c\nd\re"
    rate(app, [event(s, 5, id=odd, counterparty="+44\t\\7700")])
    row = UsageEvent.get(UsageEvent.event_id == odd)
    assert row.counterparty == "+44\t\\7700" and row.covered == 5
    assert LedgerEntry.get(LedgerEntry.bucket == promo.id).reference == odd
    assert rate(app, [event(s, 5, id=odd)])[0].status == "duplicate"
