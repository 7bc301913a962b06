"""Rating (USE-3, USE-7): bucket order, splitting, expiry, overage, once-only, and its properties."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from engine import hookimpl
from engine.db import utcnow
from engine.registry import Credit
from plugins.usage.models import Bucket, LedgerEntry, UsageEvent
from plugins.usage.rating import Slot, UsageIn, apply, eligible, rate
from plugins.usage.settings import Policy
from usage_helpers import GB, bucket, customer_user, event, service_for

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
ASC, DESC = Policy(), Policy(descending=True)


def slots(*specs, policy=ASC) -> list[Slot]:
    """Slots from (id, type, weight, remaining[, expires_in_days[, scope]]) tuples, sorted."""
    out = []
    for spec in specs:
        sid, kind, weight, remaining, *rest = spec
        expires = NOW + timedelta(days=rest[0]) if rest and rest[0] is not None else None
        scope = rest[1] if len(rest) > 1 else "any"
        s = Slot(
            sid,
            kind,
            scope,
            weight,
            expires,
            remaining,
            remaining,
            "GBP" if kind == "monetary" else "bytes",
        )
        s.key = policy.order_key(weight, expires, sid)
        out.append(s)
    return sorted(out, key=lambda s: s.key)


def usage(quantity, kind="data", **extra) -> UsageIn:
    if kind == "voice":
        extra.setdefault("destination", "offnet")
    return UsageIn("e1", 1, kind, quantity, NOW - timedelta(minutes=1), **extra)


def consumed(moves) -> dict[int, int]:
    out: dict[int, int] = {}
    for slot, delta, _ in moves:
        out[slot.id] = out.get(slot.id, 0) - delta
    return out


# -- the rules, in memory ----------------------------------------------------------------


@pytest.mark.spec("USE-3")
def test_ascending_weight_promo_then_topup_then_plan():
    buckets = slots((1, "data", 30, 100), (2, "data", 10, 100), (3, "data", 20, 100))
    outcome, moves = apply(usage(250), buckets, ASC, "record", NOW)
    assert [m[0].id for m in moves] == [2, 3, 1]
    assert consumed(moves) == {2: 100, 3: 100, 1: 50}
    assert (outcome.covered, outcome.overage) == (250, 0)


@pytest.mark.spec("USE-3")
def test_equal_weights_earliest_expiry_first_and_no_expiry_last():
    buckets = slots((1, "data", 20, 10, None), (2, "data", 20, 10, 9), (3, "data", 20, 10, 2))
    _, moves = apply(usage(25), buckets, ASC, "record", NOW)
    assert [m[0].id for m in moves] == [3, 2, 1]


@pytest.mark.spec("USE-3")
def test_descending_order_is_an_operator_setting():
    buckets = slots((1, "data", 30, 100), (2, "data", 10, 100), policy=DESC)
    _, moves = apply(usage(150), buckets, DESC, "record", NOW)
    assert consumed(moves) == {1: 100, 2: 50}


@pytest.mark.spec("USE-3")
def test_expired_buckets_are_never_consumed():
    buckets = slots((1, "data", 10, 100, -1), (2, "data", 30, 100))
    outcome, moves = apply(usage(150), buckets, ASC, "record", NOW)
    assert consumed(moves) == {2: 100}
    assert outcome.overage == 50 and buckets[0].remaining == 100


@pytest.mark.spec("USE-7")
def test_uncovered_usage_is_overage_or_charged_to_credit():
    buckets = slots((1, "data", 30, 10 * 10**6), (9, "monetary", 30, 1000))
    outcome, moves = apply(usage(15 * 10**6), buckets, ASC, "record", NOW)
    assert (outcome.covered, outcome.charged, outcome.overage) == (10**7, 0, 5 * 10**6)
    assert buckets[1].remaining == 1000  # "record" leaves credit alone

    buckets = slots((1, "data", 30, 10 * 10**6), (9, "monetary", 30, 1000))
    outcome, moves = apply(usage(15 * 10**6), buckets, ASC, "credit", NOW)
    # 5 MB at 1p per MB: 5p out of the credit, nothing left unpaid.
    assert (outcome.covered, outcome.charged, outcome.overage) == (10**7, 5, 0)
    assert consumed(moves) == {1: 10**7, 9: 5} and moves[-1][2] == "charge"


def test_credit_that_runs_out_leaves_the_rest_as_overage():
    buckets = slots((9, "monetary", 30, 30))
    outcome, _ = apply(usage(120, "voice"), buckets, ASC, "credit", NOW)  # 2 min at 10p = 20p
    assert (outcome.charged, outcome.overage) == (20, 0)
    outcome, _ = apply(usage(120, "voice"), buckets, ASC, "credit", NOW)
    assert outcome.charged == 10 and outcome.overage == 60  # half the cost paid: half the time
    assert buckets[0].remaining == 0


@pytest.mark.spec("USE-4")
def test_voice_destinations_use_the_allowances_that_cover_them():
    buckets = slots(
        (1, "voice", 30, 600, None, "domestic"), (2, "voice", 30, 300, None, "international")
    )
    _, moves = apply(usage(60, "voice", destination="international"), buckets, ASC, "record", NOW)
    assert consumed(moves) == {2: 60}
    _, moves = apply(usage(60, "voice", destination="onnet"), buckets, ASC, "record", NOW)
    assert consumed(moves) == {1: 60}
    outcome, moves = apply(usage(60, "voice", destination="special"), buckets, ASC, "record", NOW)
    assert moves == [] and outcome.overage == 60  # special-rate numbers are never in a bundle


@pytest.mark.spec("USE-5")
def test_mms_counts_against_sms_only_when_the_operator_says_so():
    buckets = slots((1, "sms", 30, 10))
    _, moves = apply(usage(1, "mms"), buckets, ASC, "record", NOW)
    assert consumed(moves) == {1: 1}
    outcome, moves = apply(usage(1, "mms"), buckets, Policy(mms_uses_sms=False), "record", NOW)
    assert moves == [] and outcome.overage == 1
    buckets = slots((1, "sms", 30, 10, None, "domestic"))
    outcome, _ = apply(usage(1, "sms", international=True), buckets, ASC, "record", NOW)
    assert outcome.overage == 1  # international texts are tracked apart from the UK allowance


# -- properties of the rules --------------------------------------------------------------------

slot_specs = st.lists(
    st.tuples(
        st.sampled_from([10, 20, 30]),
        st.integers(0, 1000),
        st.one_of(st.none(), st.integers(-3, 30)),
    ),
    max_size=6,
)


@pytest.mark.spec("USE-3")
@given(
    specs=slot_specs,
    quantity=st.integers(1, 4000),
    descending=st.booleans(),
    mode=st.sampled_from(["record", "credit"]),
)
def test_apply_properties(specs, quantity, descending, mode):
    policy = Policy(descending=descending)
    buckets = slots(
        *[(i + 1, "data", w, r, e) for i, (w, r, e) in enumerate(specs)],
        (99, "monetary", 30, 50),
        policy=policy,
    )
    before = {s.id: s.remaining for s in buckets}
    order = [s.id for s in eligible(usage(quantity), buckets, policy, NOW)]
    outcome, moves = apply(usage(quantity), buckets, policy, mode, NOW)
    assert all(s.remaining >= 0 for s in buckets)
    taken = consumed(moves)
    assert sum(v for k, v in taken.items() if k != 99) == outcome.covered
    if mode == "record":
        assert outcome.overage == quantity - outcome.covered and outcome.charged == 0
    else:
        assert outcome.overage <= quantity - outcome.covered
        assert outcome.charged == taken.get(99, 0)
    for s in buckets:  # nothing expired is touched; every change is a move
        assert before[s.id] - s.remaining == taken.get(s.id, 0)
        if s.expires_at is not None and s.expires_at <= NOW:
            assert s.id not in taken
    # Order: a bucket is only used once every bucket before it is empty.
    used = [sid for sid in order if sid in taken]
    for sid in used[:-1]:
        assert next(s for s in buckets if s.id == sid).remaining == 0
    assert used == order[: len(used)]


# -- the batch, on the database --------------------------------------------------------------------


def ledger_sum(bucket_id: int) -> int:
    return sum(e.delta for e in LedgerEntry.select().where(LedgerEntry.bucket == bucket_id))


def check_ledger(service) -> None:
    for b in Bucket.select().where(Bucket.service == service.id):
        assert b.remaining >= 0
        assert b.remaining == b.initial + ledger_sum(b.id), b.name


@pytest.mark.spec("USE-7")
def test_a_batch_is_rated_once_and_a_resent_event_changes_nothing(app):
    service = service_for(customer_user())
    plan = bucket(service, amount=GB, weight=30)
    promo = bucket(service, amount=GB // 10, weight=10)
    events = [event(service, GB // 4, id=f"b-{i}") for i in range(3)]
    outcomes = rate(app, events + [events[0]])
    assert [o.status for o in outcomes] == ["rated"] * 3 + ["duplicate"]
    assert Bucket.get_by_id(promo.id).remaining == 0
    assert Bucket.get_by_id(plan.id).remaining == GB - (3 * GB // 4 - GB // 10)
    check_ledger(service)
    again = rate(app, events)
    assert {o.status for o in again} == {"duplicate"}
    assert UsageEvent.select().count() == 3 and LedgerEntry.select().count() == 4
    assert Bucket.get_by_id(plan.id).remaining == GB - (3 * GB // 4 - GB // 10)


@pytest.mark.spec("USE-3", "USE-7")
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    amounts=st.lists(
        st.tuples(
            st.sampled_from([10, 20, 30]),
            st.integers(0, 500),
            st.one_of(st.none(), st.integers(-2, 10)),
        ),
        min_size=1,
        max_size=5,
    ),
    quantities=st.lists(st.integers(1, 400), min_size=1, max_size=25),
    kind=st.sampled_from(["prepaid", "mobile"]),
)
def test_rating_properties_on_the_database(app, amounts, quantities, kind):
    """Never negative, the ledger sums to every balance, a replay changes nothing."""
    service = service_for(customer_user(), service_type=kind)
    now = utcnow()
    for weight, amount, days in amounts:
        bucket(
            service,
            amount=amount,
            weight=weight,
            expires_at=None if days is None else now + timedelta(days=days),
        )
    bucket(service, "monetary", 300)
    events = [event(service, q, id=f"p{service.id}-{i}") for i, q in enumerate(quantities)]
    outcomes = rate(app, events)
    check_ledger(service)
    rated = UsageEvent.select().where(UsageEvent.service == service.id)
    assert sum(e.covered for e in rated) == sum(o.covered for o in outcomes)
    assert sum(
        -ledger_sum(b.id)
        for b in Bucket.select().where((Bucket.service == service.id) & (Bucket.type == "data"))
    ) == sum(o.covered for o in outcomes)
    snapshot = [(b.id, b.remaining) for b in Bucket.select().order_by(Bucket.id)]
    ledger_rows = LedgerEntry.select().count()
    assert {o.status for o in rate(app, list(reversed(events)))} == {"duplicate"}
    assert [(b.id, b.remaining) for b in Bucket.select().order_by(Bucket.id)] == snapshot
    assert LedgerEntry.select().count() == ledger_rows


class Recorder:
    def __init__(self):
        self.low, self.rated = [], []

    @hookimpl
    def balance_low(self, app, service, balance, threshold):
        self.low.append((service.id, balance.type, balance.remaining, threshold))

    @hookimpl
    def usage_rated(self, app, service, before, after):
        self.rated.append((service.id, before, after))


@pytest.mark.spec("NOT-1")
def test_hook_balance_low_fires_once_per_crossing(make_app):
    recorder = Recorder()
    app = make_app(plugins=[("recorder", recorder)])
    service = service_for(customer_user())
    bucket(service, amount=1000)
    rate(app, [event(service, 850)])
    assert recorder.low == []
    assert recorder.rated[-1][1:] == ({"data": 1000}, {"data": 150})
    rate(app, [event(service, 60)])  # 9% left: crosses the default 10%
    assert recorder.low == [(service.id, "data", 90, 10)]
    rate(app, [event(service, 10)])
    rate(app, [event(service, 10)])
    assert len(recorder.low) == 1  # still below: no second event
    app.plugins.hook.credit_balance(
        app=app, service=service, credit=Credit("data", 1000, "bytes", reference="t-1")
    )
    rate(app, [event(service, 1000)])  # from 1070 of 2000 down to 70: below again
    assert len(recorder.low) == 2 and recorder.low[-1][2] == 70


def test_hook_usage_rated_reports_each_service_once_per_batch(make_app):
    recorder = Recorder()
    app = make_app(plugins=[("recorder", recorder)])
    one, two = service_for(customer_user()), service_for(customer_user())
    bucket(one, amount=1000)
    bucket(two, "voice", 600)
    rate(app, [event(one, 100), event(one, 50), event(two, 60, "voice")])
    assert sorted(recorder.rated) == sorted(
        [(one.id, {"data": 1000}, {"data": 850}), (two.id, {"voice": 600}, {"voice": 540})]
    )
    rate(app, [event(one, 100, id="again")])
    rate(app, [event(one, 100, id="again")])  # a duplicate-only batch changes nothing: no call
    assert len(recorder.rated) == 3


@pytest.mark.spec("NOT-3")
def test_the_customers_own_threshold_wins(make_app):
    class Prefs:  # a plugin with its own thresholds answers the bulk hook rating asks first
        @hookimpl(tryfirst=True)
        def balance_threshold(self, app, customer_id, balance_type):
            return 50

        @hookimpl(tryfirst=True)
        def balance_thresholds(self, app, customer_ids, balance_type):
            return {cid: 50 for cid in customer_ids}

    recorder = Recorder()
    app = make_app(plugins=[("prefs", Prefs()), ("recorder", recorder)])
    service = service_for(customer_user())
    bucket(service, amount=1000)
    rate(app, [event(service, 600)])
    assert recorder.low == [(service.id, "data", 400, 50)]


def test_events_for_unknown_services_are_refused(app):
    from plugins.usage.rating import UnknownService

    service = service_for(customer_user())
    ghost = event(service, 10)
    ghost.service_id = 999999
    with pytest.raises(UnknownService):
        rate(app, [event(service, 5), ghost])
    assert UsageEvent.select().count() == 0


@pytest.mark.spec("USE-6")
def test_hook_credit_balance_adds_a_bucket_once_per_reference(app):
    service = service_for(customer_user())
    credit = Credit("monetary", 1000, "GBP", reference="purchase-7")
    first = app.plugins.hook.credit_balance(app=app, service=service, credit=credit)
    again = app.plugins.hook.credit_balance(app=app, service=service, credit=credit)
    assert first.id == again.id and Bucket.select().count() == 1
    assert (first.type, first.remaining, first.unit, first.weight) == ("monetary", 1000, "GBP", 20)
    with pytest.raises(ValueError):
        app.plugins.hook.credit_balance(
            app=app, service=service, credit=Credit("data", 10, "GBP", reference="bad")
        )


@pytest.mark.spec("USE-1")
def test_hook_service_balances_answers_in_consumption_order(app):
    service = service_for(customer_user())
    plan = bucket(service, amount=GB, weight=30)
    promo = bucket(service, amount=GB, weight=10)
    bucket(service, amount=GB, weight=10, expires_at=utcnow() - timedelta(days=1))
    rows = app.plugins.hook.service_balances(app=app, service=service)
    assert [r.id for r in rows] == [promo.id, plan.id]
    empty = service_for(customer_user())
    assert app.plugins.hook.service_balances(app=app, service=empty) is None


def test_hook_balance_thresholds_is_asked_once_per_batch(make_app):
    asked = []

    class BulkPrefs:
        @hookimpl(tryfirst=True)
        def balance_thresholds(self, app, customer_ids, balance_type):
            asked.append((tuple(customer_ids), balance_type))
            return {customer_ids[0]: 50}  # the others fall back one by one

    recorder = Recorder()
    app = make_app(plugins=[("bulk", BulkPrefs()), ("recorder", recorder)])
    one, two = service_for(customer_user()), service_for(customer_user())
    bucket(one, amount=1000)
    bucket(two, amount=1000)
    rate(app, [event(one, 600), event(two, 600), event(one, 1), event(two, 1)])
    assert asked == [(tuple(sorted([one.customer_id, two.customer_id])), "data")]
    # 400 left: below the bulk answer's 50% for the first customer, above 10% for the second.
    assert [(sid, threshold) for sid, _, _, threshold in recorder.low] == [(one.id, 50)]
