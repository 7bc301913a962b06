"""Faults (issue 10, item 4): processes that die, duplicated webhooks, Redis, workers and SMTP down.

Real parts only. A dying process is a real one: ``tests/fault_child.py`` forks a
portal process per run that sends one real request and leaves with
``os._exit`` at the fault point (no rollback, no ``finally``). Recovery is the
portal's own: billing's periodic reconciliation (``billing.reconcile_payments``,
run by a real worker), the outbox relay, dramatiq's redelivery. The default
variants run in CI with small counts; ``@pytest.mark.long`` runs the issue's
figures (``PORTICO_LONG_TESTS=1``).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import time_machine

from billing_helpers import customer, sandbox_card
from engine.serve import run_worker
from engine.testing import TEST_ALLOWANCES, PrincipalHeader, run_tasks
from jobs_plugin.harness import RunningWorker, free_port, portico, portico_env, wait_for
from mailserver import Inbox, SMTPServer, smtp  # noqa: F401 - smtp: the fixture
from fault_child import DIED, POINTS
from plugins.billing.models import Payment, ProviderEvent, Transaction
from plugins.email.models import EmailDelivery
from plugins.sandbox.models import SandboxCharge
from plugins.topups.models import TopupPurchase
from plugins.usage.models import Bucket
from topups_helpers import api_for, service_of, topup_catalogue

TESTS = Path(__file__).resolve().parent
#: Where the backend makes no difference to the fault, one is enough (CI time).
ON_POSTGRES = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
ON_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
CHILD = TESTS / "fault_child.py"
#: Many purchases by one customer in a few seconds: no per-customer attempt limit in the way.
NO_LIMIT = {"billing": {"pay_rate": "100000/minute"}}


def settings_of(app, **extra) -> dict:
    """``make_app``'s settings for a child process sharing this app's database and files."""
    s = app.settings
    return {
        "data_dir": str(s.data_dir),
        "database_url": s.database_url,
        "broker_url": s.broker_url,
        "secret_key": s.secret_key,
        "base_url": s.base_url,
        **TEST_ALLOWANCES,
        "plugins": {"disabled": [], "entry_points": False},
        **extra,
    }


def child(app, extra: dict, *args) -> list[int]:
    """Run ``fault_child.py <args>``; the exit status of each of its runs."""
    env = {**os.environ, "PORTICO_FAULT_SETTINGS": json.dumps(settings_of(app, **extra))}
    app.database.close_all()
    done = subprocess.run(
        [sys.executable, str(CHILD), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def make_world(make_app, **extra):
    billing = {**NO_LIMIT["billing"], **extra.pop("billing", {})}
    app = make_app(plugins=[("test-auth", PrincipalHeader())], billing=billing, **extra)
    c, user = customer("alice")
    return app, {
        "customer": c,
        "user": user,
        "service": service_of(c, "prepaid"),
        "products": topup_catalogue(app),
        "api": api_for(app, user),
    }


def reconcile(app) -> None:
    """Billing's periodic reconciliation, later than a request could take, twice, by a worker."""
    later = datetime.now(timezone.utc) + timedelta(minutes=3)
    with time_machine.travel(later):
        for _ in range(2):
            app.tasks.actors["plugins.billing.tasks.reconcile_payments"].send()
            run_tasks(app, timeout_ms=600_000)  # receipts' PDFs and emails too


def ledger(world, charged: list[int]) -> dict:
    """Check money against credit for every purchase; ``charged``: the provider's succeeded
    charge amounts. Returns the counts."""
    purchases = list(TopupPurchase.select())
    assert {p.status for p in purchases} <= {"credited", "failed"}, Counter(
        p.status for p in purchases
    )
    assert not Payment.select().where(Payment.status.in_(("pending", "requires_action"))).exists()
    credited = [p for p in purchases if p.status == "credited"]
    buckets = list(
        Bucket.select().where((Bucket.service == world["service"].id) & (Bucket.type == "monetary"))
    )
    succeeded = list(Payment.select().where(Payment.status == "succeeded"))
    received = list(Transaction.select().where(Transaction.kind == "payment"))
    # No lost credit, no double credit, no money without credit, no credit without money.
    assert len(buckets) == len(credited) == len(succeeded) == len(received) == len(charged)
    assert sorted(b.reference for b in buckets) == sorted(p.reference for p in credited)
    assert (
        sum(b.remaining for b in buckets)
        == sum(charged)
        == sum(p.amount for p in succeeded)
        == -sum(t.amount for t in received)
    )
    mails = EmailDelivery.select().where(EmailDelivery.kind == "topup_confirmed").count()
    assert mails == len(credited)
    return {
        "purchases": len(purchases),
        "credited": len(credited),
        "failed": len(purchases) - len(credited),
        "credit": sum(b.remaining for b in buckets),
    }


def sandbox_charged() -> list[int]:
    return [c.amount for c in SandboxCharge.select().where(SandboxCharge.status == "succeeded")]


# -- the process dies at a point of a purchase -----------------------------------------------------

#: What each death must end as after reconciliation: no money moved, or credited once.
EXPECTED = {
    "before_charge": "failed",
    "after_created": "failed",
    "after_charge": "credited",
    "after_commit": "credited",
}


def die_then_reconcile(make_app, runs: int) -> None:
    """``runs`` purchases die at each point; reconciliation settles each once, as it should."""
    app, world = make_world(make_app)
    sandbox_card(app, world["customer"].id)
    product = world["products"]["prepaid-credit-5"]
    started = time.monotonic()
    codes = child(
        app,
        NO_LIMIT,
        "purchase",
        ",".join(POINTS),
        runs,
        world["service"].id,
        product.id,
        world["user"].id,
    )
    assert codes == [DIED] * runs * len(POINTS), codes  # every run really died at its point
    left_open = Payment.select().where(Payment.status == "pending").count()
    reconcile(app)
    counts = ledger(world, sandbox_charged())
    # The runs went in order, point after point: each purchase ends as its point says.
    purchases = list(TopupPurchase.select().order_by(TopupPurchase.id))
    got = [p.status for p in purchases]
    assert got == [EXPECTED[point] for point in POINTS for _ in range(runs)], got
    print(
        f"\n{runs} deaths at each of {', '.join(POINTS)}: {left_open} payments "
        f"left open, after reconciliation {counts} ({time.monotonic() - started:.1f}s)"
    )


@pytest.mark.spec("BILL-2", "TOP-1")
def test_a_purchase_killed_at_any_point_is_reconciled_once(make_app):
    die_then_reconcile(make_app, runs=5)


@pytest.mark.long
@pytest.mark.spec("BILL-2", "TOP-1")
def test_a_purchase_killed_at_any_point_is_reconciled_once_long(make_app):
    die_then_reconcile(make_app, runs=50)


# -- the webhook: a process dies applying it; every event arrives three times, shuffled ------------


def stripe_world(make_app, localstripe):
    from test_stripe import add_card

    app, world = make_world(make_app, **localstripe.settings())
    confirmed, saved = add_card(world["api"], localstripe)
    assert saved.status_code == 201, saved.text
    return app, world


def stripe_charged(localstripe) -> list[int]:
    from test_stripe import charges_at_stripe

    return [c.amount for c in charges_at_stripe(localstripe)]


def succeeded_events(localstripe) -> dict[str, bytes]:
    """localstripe's ``payment_intent.succeeded`` events (as Stripe posts them), by intent."""
    found = (
        localstripe.client()
        .v1.events.list(params={"type": "payment_intent.succeeded", "limit": 100})
        .data
    )
    return {e.data.object.id: json.dumps(e.to_dict(), sort_keys=True).encode() for e in found}


def webhooks_die_then_arrive_three_times(make_app, localstripe, tmp_path, runs: int) -> None:
    from test_stripe import post_webhook, signed

    app, world = stripe_world(make_app, localstripe)
    product = world["products"]["prepaid-credit-5"]
    started = time.monotonic()
    for i in range(runs):  # answered normally: their webhooks come later, and must change nothing
        bought = world["api"].post(
            f"/api/v1/services/{world['service'].id}/topups",
            json={"product_id": product.id},
            headers={"Idempotency-Key": f"ok-{i}"},
        )
        assert bought.status_code == 201, bought.text
    settings = localstripe.settings()
    settings["billing"].update(NO_LIMIT["billing"])
    # These die after Stripe charged them: only the webhook can bring the news...
    codes = child(
        app,
        settings,
        "purchase",
        "after_charge",
        runs,
        world["service"].id,
        product.id,
        world["user"].id,
    )
    assert codes == [DIED] * runs, codes
    lost = list(Payment.select().where(Payment.status == "pending"))
    assert len(lost) == runs and all(p.provider_ref for p in lost)
    # ...and the process applying it dies too, inside its transaction.
    events = succeeded_events(localstripe)
    assert len(events) == 2 * runs
    files = []
    for payment in lost:
        path = tmp_path / f"{payment.provider_ref}.json"
        path.write_bytes(events[payment.provider_ref])
        path.with_suffix(".sig").write_text(signed(path.read_bytes()))
        files.append(path)
    assert child(app, settings, "webhook", "stripe", *files) == [DIED] * runs
    assert Payment.select().where(Payment.status == "pending").count() == runs
    assert ProviderEvent.select().count() == 0  # rolled back with the death

    # Stripe retries: every event of every payment three times, shuffled, four at a time.
    payloads = [events[p.provider_ref] for p in Payment.select()]
    deliveries = payloads * 3
    random.Random(10).shuffle(deliveries)
    answers: list = []
    lock = threading.Lock()

    def deliver(batch):
        try:
            for payload in batch:
                r = post_webhook(app, payload, signed(payload))
                with lock:
                    answers.append((r.status_code, r.json.get("duplicate", False)))
        finally:
            app.database.close()

    threads = [threading.Thread(target=deliver, args=(deliveries[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert Counter(code for code, _ in answers) == {200: len(deliveries)}, answers
    assert sum(1 for _, dup in answers if not dup) == len(payloads)  # each acted on once
    assert ProviderEvent.select().count() == len(payloads)
    reconcile(app)
    counts = ledger(world, stripe_charged(localstripe))
    assert counts["credited"] == 2 * runs, counts
    print(
        f"\nStripe: {runs} answered + {runs} lost purchases, {runs} webhook processes killed, "
        f"then {len(deliveries)} deliveries ({len(payloads)} events x 3, shuffled, 4 threads): "
        f"{counts} ({time.monotonic() - started:.1f}s)"
    )


@pytest.mark.spec("BILL-2", "TOP-1")
def test_a_webhook_killed_midway_then_delivered_three_times_acts_once(
    make_app, localstripe, tmp_path
):
    webhooks_die_then_arrive_three_times(make_app, localstripe, tmp_path, runs=4)


@pytest.mark.long
@pytest.mark.spec("BILL-2", "TOP-1")
def test_a_webhook_killed_midway_then_delivered_three_times_acts_once_long(
    make_app, localstripe, tmp_path
):
    webhooks_die_then_arrive_three_times(make_app, localstripe, tmp_path, runs=40)


# -- Redis down for a while during purchases -------------------------------------------------------


class RedisServer:
    """A redis-server of this test's own on a free port (never the shared one), stop/start-able."""

    def __init__(self, folder: Path, persistent: bool = True):
        self.port, self.folder, self.process = free_port(), folder, None
        self.persistent = persistent
        folder.mkdir(parents=True, exist_ok=True)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            # A broker keeps what it accepted across a restart: append-only file, as deployed
            # (docs/background-work.md); without it a restart comes back empty.
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.persistent else "no",
                "--appendfsync",
                "always",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url(), socket_connect_timeout=1).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # our own process, by its id
            self.process.wait(10)
        self.process = None


@pytest.fixture
def own_redis(tmp_path):
    import shutil

    if shutil.which("redis-server") is None:
        from engine.testing import need_service

        need_service("redis-server", FileNotFoundError("redis-server is not installed"))
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def purchases_through_a_redis_outage(
    make_app, own_redis, purchases: int, seconds: float, outage: float
) -> None:
    """``purchases`` spread over ``seconds``; Redis (the broker and the rate-limit counters) is
    down for ``outage`` seconds from a sixth of the way in."""
    app, world = make_world(
        make_app,
        broker_url=own_redis.url(0) + "?namespace=faults",
        security={"rate_limit_storage": own_redis.url(1)},
    )
    sandbox_card(app, world["customer"].id)
    product = world["products"]["prepaid-credit-5"]
    answers: Counter = Counter()
    during: Counter = Counter()
    stop = threading.Event()  # a real worker (dramatiq + the outbox relay) lives through it too
    worker = threading.Thread(target=run_worker, args=(app,), kwargs={"stop": stop})
    worker.start()
    start = time.monotonic()
    down_at, up_at = seconds / 6, seconds / 6 + outage
    down = False
    for i in range(purchases):
        now = time.monotonic() - start
        if not down and down_at <= now < up_at:
            own_redis.stop()
            down = True
        elif down and now >= up_at:
            own_redis.start()
            down = False
        r = world["api"].post(
            f"/api/v1/services/{world['service'].id}/topups",
            json={"product_id": product.id},
            headers={"Idempotency-Key": f"redis-{i}"},
        )
        answers[r.status_code] += 1
        if down:
            during[r.status_code] += 1
        assert r.status_code < 500, r.text[:500]  # never a server error for the customer
        pause = start + seconds * (i + 1) / purchases - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    if down:
        own_redis.start()
    assert answers == {201: purchases} and during[201] > 0, (answers, during)
    waiting = app.tasks.pending()
    try:
        try:
            wait_for(
                lambda: (
                    EmailDelivery.select().where(EmailDelivery.status == "sent").count()
                    == 2 * purchases
                ),
                timeout=240,
                what="every email after the outage",
            )
        except BaseException:
            print("outbox:", app.tasks.pending(), Counter(d.status for d in EmailDelivery.select()))
            raise
        recovered = time.monotonic() - start - up_at
    finally:
        stop.set()
        worker.join(120)
    counts = ledger(world, sandbox_charged())
    assert counts["credited"] == purchases
    deliveries = list(EmailDelivery.select())
    assert len(deliveries) == 2 * purchases  # payment received + top-up added, per purchase
    assert Counter(d.status for d in deliveries) == {"sent": 2 * purchases}
    mails = list((Path(app.settings.data_dir) / "mail").glob("*.eml"))
    ids = Counter(m.read_text().split("Message-ID: ", 1)[1].split("\n", 1)[0] for m in mails)
    assert len(mails) == 2 * purchases and max(ids.values()) == 1  # each delivered once
    print(
        f"\nRedis down {outage:.0f}s of {time.monotonic() - start:.0f}s: {purchases} purchases "
        f"({during[201]} during the outage), answers {dict(answers)}, {waiting} tasks waited in "
        f"the outbox at the end, {len(mails)} emails delivered once each, all out "
        f"{recovered:.1f}s after Redis came back"
    )


@ON_POSTGRES
@pytest.mark.spec("ENG-2", "NOT-4")
def test_emails_a_redis_without_persistence_lost_are_sent_by_the_sweep_once(make_app, tmp_path):
    redis = RedisServer(tmp_path / "redis", persistent=False)
    redis.start()
    try:
        app, world = make_world(make_app, broker_url=redis.url(0) + "?namespace=lost")
        sandbox_card(app, world["customer"].id)
        product = world["products"]["prepaid-credit-5"]
        for i in range(5):
            r = world["api"].post(
                f"/api/v1/services/{world['service'].id}/topups",
                json={"product_id": product.id},
                headers={"Idempotency-Key": f"lost-{i}"},
            )
            assert r.status_code == 201, r.text
        assert app.tasks.pending() == 0  # the outbox handed every email to Redis...
        redis.stop()
        redis.start()  # ...which came back empty
        run_tasks(app)
        assert Counter(d.status for d in EmailDelivery.select()) == {"pending": 10}
        with time_machine.travel(app.tasks.redeliver_after + timedelta(minutes=1)):
            # The outbox's sweep (OPS-6): the 10 emails and the 5 receipts' PDF renders.
            assert app.tasks.redeliver() == 15
        run_tasks(app)
    finally:
        redis.stop()
    assert Counter(d.status for d in EmailDelivery.select()) == {"sent": 10}
    mails = list((Path(app.settings.data_dir) / "mail").glob("*.eml"))
    ids = Counter(m.read_text().split("Message-ID: ", 1)[1].split("\n", 1)[0] for m in mails)
    assert len(mails) == 10 and max(ids.values()) == 1  # each delivered once
    from plugins.billing.models import Invoice

    assert [bool(i.pdf_path) for i in Invoice.select()] == [True] * 5
    print(
        "\nRedis restarted empty with 10 emails and 5 PDF renders queued: all sent again by "
        "the sweep, each email once"
    )


@ON_POSTGRES
@pytest.mark.spec("ENG-2", "TOP-1")
def test_redis_down_during_purchases_no_5xx_and_every_email_once(make_app, own_redis):
    purchases_through_a_redis_outage(make_app, own_redis, purchases=30, seconds=6, outage=3)


@ON_POSTGRES
@pytest.mark.long
@pytest.mark.spec("ENG-2", "TOP-1")
def test_redis_down_during_purchases_no_5xx_and_every_email_once_long(make_app, own_redis):
    purchases_through_a_redis_outage(make_app, own_redis, purchases=1000, seconds=180, outage=120)


# -- a worker killed mid-task; SMTP down -----------------------------------------------------------


class KillingInbox(Inbox):
    """An SMTP inbox that SIGKILLs ``victim`` (a worker) once it has a message in hand, before
    answering: the worker dies mid-task, after the server took the email."""

    def __init__(self):
        super().__init__()
        self.victim: subprocess.Popen | None = None

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        if self.victim is not None:
            self.victim.kill()  # the worker process this test started, by its id
            self.victim = None
        return answer


def message_ids(inbox: Inbox) -> Counter:
    return Counter(m["Message-ID"] for m in inbox.messages)


def buy_credit(world, n: int) -> None:
    product = world["products"]["prepaid-credit-5"]
    for i in range(n):
        r = world["api"].post(
            f"/api/v1/services/{world['service'].id}/topups",
            json={"product_id": product.id},
            headers={"Idempotency-Key": f"b{i}"},
        )
        assert r.status_code == 201, r.text


@ON_SQLITE
@pytest.mark.spec("ENG-2")
def test_a_worker_killed_while_sending_is_redelivered_and_sends_each_email_at_most_once(
    make_app, tmp_path
):
    smtp = SMTPServer()
    smtp.inbox = KillingInbox()
    smtp.start()
    try:
        app, world = make_world(make_app, **smtp.settings())
        sandbox_card(app, world["customer"].id)
        buy_credit(world, 1)  # two emails: payment received, top-up added
        env = portico_env(
            app,
            tmp_path,
            PORTICO_MAIL_BACKEND="smtp",
            PORTICO_MAIL_SMTP_HOST="127.0.0.1",
            PORTICO_MAIL_SMTP_PORT=str(smtp.port),
        )
        log = tmp_path / "worker.log"
        # One thread: with two, both emails can be "sending" when the kill lands (each then
        # ends "unconfirmed"), and the test would not know which case it saw.
        worker = portico("worker", "--threads", "1", env=env, log=log)
        smtp.inbox.victim = worker
        assert worker.wait(timeout=90) == -9, log.read_text()  # SIGKILLed mid-task
        [first] = smtp.inbox.messages
        assert Counter(d.status for d in EmailDelivery.select())["sending"] == 1
        # Its messages are redelivered once their lease runs out, to another worker.
        app.tasks.relay()
        lease = app.tasks.broker.lease_ms("default")
        with time_machine.travel(timedelta(milliseconds=lease + 1000), tick=True):
            with RunningWorker(app):
                wait_for(
                    lambda: (
                        not EmailDelivery.select()
                        .where(EmailDelivery.status.in_(("pending", "sending")))
                        .exists()
                    ),
                    timeout=60,
                    what="the redelivered tasks",
                )
    finally:
        smtp.stop()
    statuses = Counter(d.status for d in EmailDelivery.select())
    assert statuses == {"unconfirmed": 1, "sent": 1}, statuses  # the redelivery ran
    ids = message_ids(smtp.inbox)
    assert len(ids) == 2 and max(ids.values()) == 1, ids  # each email at most once
    assert first["Message-ID"] in ids
    print(
        f"\nworker SIGKILLed after the SMTP server took email 1 of 2: redelivered, "
        f"statuses {dict(statuses)}, {len(smtp.inbox.messages)} messages, none twice"
    )


@ON_SQLITE
@pytest.mark.spec("ENG-2")
def test_smtp_down_loses_nothing_and_sends_each_email_once(make_app, smtp):
    app, world = make_world(make_app, **smtp.settings())
    sandbox_card(app, world["customer"].id)
    smtp.stop()
    buy_credit(world, 3)
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(app,), kwargs={"stop": stop})
    worker.start()
    try:
        wait_for(
            lambda: EmailDelivery.select().where(EmailDelivery.attempts > 0).count() == 6,
            timeout=60,
            what="every email to be tried while SMTP is down",
        )
        assert not EmailDelivery.select().where(EmailDelivery.status == "sent").exists()
        smtp.start()
        wait_for(
            lambda: EmailDelivery.select().where(EmailDelivery.status == "sent").count() == 6,
            timeout=120,
            what="every email after SMTP came back",
        )
    finally:
        stop.set()
        worker.join(120)
    ids = message_ids(smtp.inbox)
    assert len(ids) == 6 and max(ids.values()) == 1, ids
    tries = [d.attempts for d in EmailDelivery.select()]
    print(
        f"\nSMTP down for 3 purchases: 6 emails, tried {sum(tries)} times in all, "
        f"each delivered once when SMTP came back"
    )
