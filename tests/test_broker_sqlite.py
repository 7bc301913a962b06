"""The embedded broker: leases, redelivery, retries with backoff, delays across restarts, ack/nack.

Consumers here are the broker's own, driven the way dramatiq's worker drives
them; the end-to-end runs with a real ``dramatiq.Worker`` are further down.
"""

import threading
import time
from datetime import datetime, timedelta, timezone

import dramatiq
import pytest
import time_machine
from dramatiq.message import Message

from engine.queue_sqlite import DEFAULT_TIME_LIMIT_MS, SQLiteBroker
from engine.tasks import make_broker

START = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "queue.sqlite3"


def broker_with_actor(path, time_limit=60_000, **options):
    """A broker as the app builds it, with one actor ``job`` on queue ``q``."""
    broker = make_broker(f"sqlite:///{path}")
    done: list = []

    def job(value):
        done.append(value)
        if value == "fail":
            raise RuntimeError("fails on purpose")

    actor = dramatiq.actor(
        job, broker=broker, actor_name="job", queue_name="q", time_limit=time_limit, **options
    )
    return broker, actor, done


def rows(broker):
    return broker.conn.execute(
        "SELECT message_id, state, eta FROM queue_message ORDER BY id"
    ).fetchall()


def test_a_lease_lasts_the_longest_time_limit_of_the_queue_plus_grace(path):
    broker, _, _ = broker_with_actor(path, time_limit=90_000)
    assert broker.lease_ms("q") == 90_000 + 60_000
    assert broker.lease_ms("other") == DEFAULT_TIME_LIMIT_MS + 60_000


def test_a_message_is_leased_to_one_consumer_at_a_time(path):
    broker, actor, _ = broker_with_actor(path)
    actor.send("x")
    first, second = broker.consume("q", timeout=50), broker.consume("q", timeout=50)
    assert next(first).args == ("x",)
    assert next(second) is None


def test_a_dead_workers_message_is_delivered_again_after_its_lease(path):
    broker, actor, _ = broker_with_actor(path, time_limit=60_000)
    with time_machine.travel(START, tick=False):
        actor.send("x")
        dead_worker = broker.consume("q", timeout=50)
        lost = next(dead_worker)  # leased, then the worker is killed: no ack ever comes
    survivor = broker.consume("q", timeout=50)
    with time_machine.travel(START + timedelta(seconds=119), tick=False):
        assert next(survivor) is None  # the lease (60 s limit + 60 s grace) still holds
    with time_machine.travel(START + timedelta(seconds=121), tick=False):
        again = next(survivor)
    assert again.message_id == lost.message_id and again.args == ("x",)
    dead_worker.ack(lost)  # a worker that was only slow acks late: the new lease stands
    assert rows(broker)[0][1] == "leased"
    survivor.ack(again)
    assert rows(broker) == []


def test_ack_removes_and_nack_keeps_the_message_as_dead(path):
    broker, actor, _ = broker_with_actor(path)
    actor.send("good")
    actor.send("bad")
    consumer = broker.consume("q", prefetch=2, timeout=50)
    good, bad = next(consumer), next(consumer)
    consumer.ack(good)
    consumer.nack(bad)
    assert broker.pending("q") == 0
    assert [m.args for m in broker.dead("q")] == [("bad",)]
    assert next(broker.consume("q", timeout=50)) is None  # dead is never delivered


def test_a_consumer_holds_no_more_than_its_prefetch(path):
    broker, actor, _ = broker_with_actor(path)
    for i in range(5):
        actor.send(i)
    greedy = broker.consume("q", prefetch=2, timeout=50)
    held = [next(greedy), next(greedy)]
    assert next(greedy) is None  # the other three stay for other workers
    other = broker.consume("q", prefetch=10, timeout=50)
    assert sorted(next(other).args[0] for _ in range(3)) == [2, 3, 4]
    greedy.ack(held[0])
    assert next(greedy) is None  # nothing left for it, but it may lease again
    actor.send(5)
    assert next(greedy).args == (5,)


def test_requeued_messages_go_back_to_the_queue(path):
    broker, actor, _ = broker_with_actor(path)
    actor.send("x")
    stopping = broker.consume("q", timeout=50)
    message = next(stopping)
    stopping.requeue([message])  # dramatiq does this for prefetched work on shutdown
    assert next(broker.consume("q", timeout=50)).message_id == message.message_id


def test_resending_a_message_id_is_a_no_op(path):
    """The outbox may send a row twice (a relay died before marking it sent)."""
    broker, actor, _ = broker_with_actor(path)
    message = actor.message("x")
    broker.enqueue(message)
    broker.enqueue(message)
    assert broker.pending("q") == 1
    consumer = broker.consume("q", timeout=50)
    leased = next(consumer)
    broker.enqueue(message)  # again, while a worker runs it: still one, still leased
    assert [r[1] for r in rows(broker)] == ["leased"]
    consumer.ack(leased)
    assert rows(broker) == []


def test_a_delayed_message_survives_a_restart(path):
    with time_machine.travel(START, tick=False):
        broker, actor, _ = broker_with_actor(path)
        actor.send_with_options(args=("later",), delay=30 * 60 * 1000)
        assert next(broker.consume("q", timeout=50)) is None
    restarted, _, _ = broker_with_actor(path)  # a new process on the same file
    with time_machine.travel(START + timedelta(minutes=29), tick=False):
        assert next(restarted.consume("q", timeout=50)) is None
    with time_machine.travel(START + timedelta(minutes=30), tick=False):
        assert next(restarted.consume("q", timeout=50)).args == ("later",)


def test_consumers_in_parallel_lease_each_message_once(path):
    broker, actor, _ = broker_with_actor(path)
    for i in range(200):
        actor.send(i)
    taken: list[int] = []
    lock = threading.Lock()

    def drain():
        own = SQLiteBroker(str(path))  # its own connection, like another process
        consumer = own.consume("q", prefetch=1000, timeout=100)
        while (message := next(consumer)) is not None:
            with lock:
                taken.append(message.args[0])

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(taken) == list(range(200))


# -- with a real dramatiq worker --------------------------------------------------


def run_until(broker, condition, timeout=20):
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "the worker did not get there"
            time.sleep(0.05)
    finally:
        worker.stop(timeout=10_000)


def test_a_failed_task_is_retried_with_backoff_from_the_queue_file(path):
    broker, actor, done = broker_with_actor(
        path, max_retries=3, min_backoff=60_000, max_backoff=120_000
    )
    message = actor.send("fail")
    run_until(broker, lambda: done == ["fail"] and rows(broker)[0][1] == "queued")
    [(message_id, state, eta)] = rows(broker)
    assert message_id == message.message_id and state == "queued"
    assert eta - int(time.time() * 1000) > 30_000  # backoff: not before half a minute
    restarted, _, done_later = broker_with_actor(path, max_retries=3)
    stored = Message.decode(restarted.conn.execute("SELECT body FROM queue_message").fetchone()[0])
    assert stored.options["retries"] == 1 and "RuntimeError" in stored.options["traceback"]
    assert "sqlite_lease" not in stored.options


def test_retries_run_out_into_the_dead_letters(path):
    broker, actor, done = broker_with_actor(path, max_retries=2, min_backoff=10, max_backoff=20)
    actor.send("fail")
    run_until(broker, lambda: broker.dead("q"))
    assert done == ["fail"] * 3  # the first run and two retries
    assert broker.pending("q") == 0
    assert broker.dead("q")[0].options["retries"] == 3


def test_a_worker_runs_what_it_leased_then_acks(path):
    broker, actor, done = broker_with_actor(path)
    for i in range(10):
        actor.send(i)
    run_until(broker, lambda: broker.pending("q") == 0)
    assert sorted(done) == list(range(10))
    assert rows(broker) == []
