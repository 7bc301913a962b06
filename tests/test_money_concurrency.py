"""Money under concurrency on PostgreSQL (issue 10, item 3): nothing lost, nothing charged twice.

Real parts only: threads send real requests through the WSGI app (the JSON API
with its idempotency, rate limits and locks) to a PostgreSQL schema of the
test's own, and the sandbox provider records each charge. The default variant
runs in CI with small counts that still race; ``@pytest.mark.long`` runs the
issue's full figures (``PORTICO_LONG_TESTS=1``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import pytest

from billing_helpers import customer, invoice_for, sandbox_card
from engine.testing import PrincipalHeader
from plugins.billing.models import Invoice, Payment, Transaction
from plugins.sandbox.models import SandboxCharge
from plugins.topups.models import TopupPurchase
from plugins.usage.models import Bucket
from topups_helpers import api_for, service_of, topup_catalogue

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

CREDIT_5 = 500  # prepaid-credit-5: £5 of credit for £5


@pytest.fixture
def app(make_app, database_url):
    # Up to 50 request threads at once in this one process: a pool that size (a gunicorn
    # deployment spreads them over workers), and no per-customer attempt limit in the way.
    return make_app(
        plugins=[("test-auth", PrincipalHeader())],
        database_url=f"{database_url}&max_connections=64",
        billing={"pay_rate": "100000/minute"},
    )


@pytest.fixture
def world(app):
    c, user = customer("alice")
    return {
        "customer": c,
        "service": service_of(c, "prepaid"),
        "card": sandbox_card(app, c.id),
        "products": topup_catalogue(app),
        "api": api_for(app, user),
    }


def race(app, n: int, fn) -> list:
    """Run ``fn(i)`` in ``n`` threads released together; their results (or exceptions) in order."""
    barrier, results = threading.Barrier(n), [None] * n

    def run(i):
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:  # noqa: BLE001 - reported by the caller's assertions
            results[i] = exc
        finally:
            app.database.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a request hung"
    return results


def buy_credit(world, key: str):
    return world["api"].post(
        f"/api/v1/services/{world['service'].id}/topups",
        json={"product_id": world["products"]["prepaid-credit-5"].id},
        headers={"Idempotency-Key": key},
    )


def pay(api, invoice_id: int, key: str | None = None):
    headers = {"Idempotency-Key": key} if key else {}
    return api.post(f"/api/v1/invoices/{invoice_id}/pay", json={}, headers=headers)


# -- 50 concurrent top-ups x 20 rounds -------------------------------------------------------------


def concurrent_topups(app, world, threads: int, rounds: int) -> None:
    started = time.monotonic()
    for r in range(rounds):
        answers = race(app, threads, lambda i: buy_credit(world, f"round-{r}-{i}"))
        bad = [
            a if isinstance(a, Exception) else (a.status_code, a.text[:200])
            for a in answers
            if isinstance(a, Exception) or a.status_code != 201
        ]
        assert bad == [], f"round {r}: {bad[:3]}"
    elapsed = time.monotonic() - started
    n = threads * rounds
    credit = list(
        Bucket.select().where((Bucket.service == world["service"].id) & (Bucket.type == "monetary"))
    )
    charged = list(SandboxCharge.select().where(SandboxCharge.status == "succeeded"))
    paid = list(Payment.select().where(Payment.status == "succeeded"))
    received = Transaction.select().where(Transaction.kind == "payment")
    # Every purchase credited once, and every penny charged is a penny of credit.
    assert len(credit) == n and sum(b.remaining for b in credit) == n * CREDIT_5
    assert len({b.reference for b in credit}) == n
    assert len(charged) == n and sum(c.amount for c in charged) == n * CREDIT_5
    assert len(paid) == n and -sum(t.amount for t in received) == n * CREDIT_5
    assert Counter(p.status for p in TopupPurchase.select()) == {"credited": n}
    assert Invoice.select().where(Invoice.status == "paid").count() == n
    print(
        f"\n{threads} concurrent top-ups x {rounds} rounds: {n} purchases, "
        f"{sum(b.remaining for b in credit)} credited = {sum(c.amount for c in charged)} "
        f"charged, {elapsed:.1f}s"
    )


@pytest.mark.spec("TOP-1", "USE-7")
def test_concurrent_topups_lose_no_credit(app, world):
    concurrent_topups(app, world, threads=10, rounds=3)


@pytest.mark.long
@pytest.mark.spec("TOP-1", "USE-7")
def test_concurrent_topups_lose_no_credit_long(app, world):
    concurrent_topups(app, world, threads=50, rounds=20)


# -- two simultaneous payments of one invoice x 100 ------------------------------------------------


def invoice_races(app, world, rounds: int) -> None:
    c, api = world["customer"], world["api"]
    outcomes: Counter = Counter()
    for _ in range(rounds):
        invoice = invoice_for(app, c.id, 1000)
        answers = race(app, 2, lambda i: pay(api, invoice.id))
        codes = sorted(a.status_code if not isinstance(a, Exception) else repr(a) for a in answers)
        assert codes == [200, 409], [getattr(a, "text", a) for a in answers]
        loser = next(a for a in answers if a.status_code == 409)
        assert loser.json["type"] in ("/problems/invoice-paid", "/problems/payment-in-progress")
        outcomes[loser.json["type"].rsplit("/", 1)[1]] += 1
        invoice = Invoice.get_by_id(invoice.id)
        assert invoice.status == "paid" and invoice.amount_paid == invoice.total == 1200
        payments = Payment.select().where(Payment.invoice == invoice.id)
        assert [p.status for p in payments] == ["succeeded"]
        assert (
            Transaction.select()
            .where((Transaction.invoice == invoice.id) & (Transaction.kind == "payment"))
            .count()
        ) == 1
    charged = SandboxCharge.select().where(SandboxCharge.status == "succeeded")
    assert charged.count() == rounds and sum(ch.amount for ch in charged) == rounds * 1200
    print(f"\n{rounds} invoice races: {rounds} charges, the losers got {dict(outcomes)}")


@pytest.mark.spec("BILL-2")
def test_two_simultaneous_payments_of_one_invoice_charge_once(app, world):
    invoice_races(app, world, rounds=10)


@pytest.mark.long
@pytest.mark.spec("BILL-2")
def test_two_simultaneous_payments_of_one_invoice_charge_once_long(app, world):
    invoice_races(app, world, rounds=100)


# -- 10 parallel requests with one Idempotency-Key -------------------------------------------------


def one_key_races(app, world, rounds: int, parallel: int = 10) -> None:
    c, api = world["customer"], world["api"]
    seen: Counter = Counter()
    for _r in range(rounds):
        invoice = invoice_for(app, c.id, 1000)
        key = str(uuid.uuid4())
        answers = race(app, parallel, lambda i: pay(api, invoice.id, key))
        codes = [a.status_code if not isinstance(a, Exception) else repr(a) for a in answers]
        seen.update(codes)
        # 409: "still being processed, repeat with the same key"; never a second charge.
        assert set(codes) <= {200, 409} and 200 in codes, codes
        first = next(a for a in answers if a.status_code == 200)
        replay = pay(api, invoice.id, key)
        assert replay.status_code == 200 and replay.json == first.json
        assert replay.headers["idempotent-replayed"] == "true"
        assert Payment.select().where(Payment.invoice == invoice.id).count() == 1

        key = str(uuid.uuid4())
        answers = race(app, parallel, lambda i: buy_credit(world, key))
        codes = [a.status_code if not isinstance(a, Exception) else repr(a) for a in answers]
        seen.update(codes)
        assert set(codes) <= {201, 409} and 201 in codes, codes
    assert SandboxCharge.select().count() == 2 * rounds
    assert TopupPurchase.select().count() == rounds
    assert Bucket.select().where(Bucket.service == world["service"].id).count() == rounds
    print(
        f"\n{rounds} x 2 races of {parallel} requests with one key: {2 * rounds} charges; "
        f"answers {dict(seen)}"
    )


@pytest.mark.spec("BILL-2", "TOP-1")
def test_parallel_requests_with_one_idempotency_key_charge_once(app, world):
    one_key_races(app, world, rounds=3)


@pytest.mark.long
@pytest.mark.spec("BILL-2", "TOP-1")
def test_parallel_requests_with_one_idempotency_key_charge_once_long(app, world):
    one_key_races(app, world, rounds=30)
