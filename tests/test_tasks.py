"""The outbox: work exists exactly when the business change does, and reaches the broker once.

Each test runs on SQLite and on PostgreSQL (the ``make_app`` fixture); the
broker is the embedded queue unless the test names Redis or RabbitMQ.
"""

import signal
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timedelta, timezone

import pendulum
import pytest
import time_machine

from engine import db
from engine.models import OutboxMessage
from engine.plugins import PluginError
from engine.serve import Scheduler
from engine.tasks import PeriodicMiddleware, task, task_name
from jobs_plugin.harness import (  # noqa: F401  (fixtures)
    REPO,
    RunningWorker,
    free_port,
    jobs_app,
    jobs_plugin,
    portico_env,
    queues,
    runs,
    wait_for,
)

pytestmark = pytest.mark.spec("ENG-2")


def outbox() -> list[OutboxMessage]:
    with db.connection():
        return list(OutboxMessage.select().order_by(OutboxMessage.id))


def redis_messages(app, queue: str) -> int:
    """Messages waiting in Redis for ``queue`` (each enqueue is its own entry there)."""
    broker = app.tasks.broker
    return broker.client.hlen(f"{broker.namespace}:{queue}.msgs")


# -- enqueueing ------------------------------------------------------------------


def test_rolled_back_work_is_never_sent(jobs_app):
    app = jobs_app()
    with db.connection():
        with pytest.raises(RuntimeError):
            with db.database.atomic():
                app.tasks.enqueue("jobs_plugin.tasks.record", "ghost")
                raise RuntimeError("the business change failed")
    assert outbox() == []
    assert app.tasks.relay() == 0
    assert app.tasks.broker.pending() == 0


def test_relay_inside_a_transaction_waits_for_the_commit(jobs_app):
    app = jobs_app()
    with db.connection():
        with db.database.atomic():
            app.tasks.enqueue("jobs_plugin.tasks.record", "soon")
            assert app.tasks.relay() == 0  # not committed yet: nothing may leave
        assert app.tasks.broker.pending() == 0
    assert app.tasks.relay() == 1
    assert app.tasks.broker.pending() == 1


def test_committed_work_survives_a_process_dying_before_the_relay(jobs_app, queues, tmp_path):
    """A separate process commits work and dies at once; a fresh app sends it."""
    app = jobs_app()
    script = textwrap.dedent("""
        import os
        import jobs_plugin
        from engine import db
        from engine.app import create_app
        from engine.settings import load_settings
        app = create_app(load_settings(), extra_plugins=[("jobs", jobs_plugin)])
        with db.connection(), db.database.atomic():
            app.tasks.enqueue("jobs_plugin.tasks.record", "after-crash")
        os._exit(9)  # killed between commit and relay
    """)
    env = portico_env(app, tmp_path, PORTICO_PLUGINS_ENTRY_POINTS="false")
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=str(REPO),
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 9, done.stderr
    assert app.tasks.broker.pending() == 0  # nothing reached the broker
    fresh = jobs_app()
    assert fresh.tasks.pending() == 1
    assert fresh.tasks.relay() == 1
    with RunningWorker(fresh):
        wait_for(lambda: runs("record") == ["after-crash"], what="the surviving task")
    assert fresh.tasks.relay() == 0


def test_arguments_must_be_json(jobs_app):
    app = jobs_app()
    with (
        db.connection(),
        pytest.raises(TypeError, match="jobs_plugin.tasks.record.*pass ids, not objects"),
    ):
        app.tasks.enqueue("jobs_plugin.tasks.record", object())
    assert outbox() == []


def test_a_task_is_named_after_its_function_and_enqueued_by_it(jobs_app):
    from jobs_plugin import tasks

    app = jobs_app()
    actor = app.tasks.actors["jobs_plugin.tasks.record"]  # not after the plugin's name "jobs"
    assert task_name(tasks.record) == actor.actor_name
    with db.connection():
        with db.database.atomic():
            app.tasks.enqueue(tasks.record, "by-function")
        assert [r.actor for r in outbox()] == ["jobs_plugin.tasks.record"]


def test_unknown_actor_names_the_problem(jobs_app):
    app = jobs_app()
    with pytest.raises(LookupError, match="no actor named 'jobs_plugin.tasks.nope'"):
        app.tasks.enqueue("jobs_plugin.tasks.nope")


def test_an_actor_without_task_decorator_is_a_start_up_error(make_app):
    from engine import hookimpl

    def plain(app):
        pass

    class Sloppy:
        @hookimpl
        def register_actors(self):
            return [plain]

    with pytest.raises(
        PluginError, match="plugin 'sloppy' registers actor 'test_tasks.plain' without @task"
    ):
        make_app(plugins=[("sloppy", Sloppy())])


def test_a_bad_cron_spec_fails_at_import():
    with pytest.raises(ValueError, match="periodic='every minute' is not a cron spec"):

        @task(periodic="every minute")
        def bad(app):
            pass


# -- broker outage -------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind,down",
    [
        pytest.param("redis", "redis://127.0.0.1:{port}/0", marks=pytest.mark.redis),
        ("amqp", "amqp://guest:guest@127.0.0.1:{port}/%2F"),
    ],
)
def test_broker_outage_keeps_work_until_a_later_relay_sends_it_once(
    jobs_app, queues, tmp_path, kind, down
):
    cut_off = jobs_app(broker_url=down.format(port=free_port()))  # nothing listens there
    with db.connection():
        for arg in ("a", "b", "c"):
            cut_off.tasks.enqueue("jobs_plugin.tasks.record", arg)
    assert cut_off.tasks.relay() == 0
    assert cut_off.tasks.relay() == 0
    rows = outbox()
    assert [r.sent_at for r in rows] == [None, None, None]
    assert sum(r.attempts for r in rows) == 2  # each relay stopped at its first failure
    tried = [r for r in rows if r.attempts]
    assert all("Connection" in r.last_error or "connect" in r.last_error for r in tried), [
        r.last_error for r in tried
    ]

    back = jobs_app(broker_url=queues.url(kind, tmp_path))
    assert back.tasks.relay() == 3
    assert back.tasks.relay() == 0
    assert all(r.sent_at is not None for r in outbox())
    with RunningWorker(back) as worker:
        wait_for(lambda: sorted(runs("record")) == ["a", "b", "c"], what="the three tasks")
        back.tasks.broker.join(queues.queue, timeout=20_000)
        worker.join()
    assert sorted(runs("record")) == ["a", "b", "c"]  # nothing ran twice


def test_a_row_that_keeps_failing_does_not_block_the_others(jobs_app, queues, tmp_path):
    app = jobs_app()
    with db.connection():
        app.tasks.enqueue("jobs_plugin.tasks.record", "old")
        OutboxMessage.update(attempts=5, last_error="earlier outage").execute()
        app.tasks.enqueue("jobs_plugin.tasks.record", "new")
    assert app.tasks.relay(limit=1) == 2
    order = [m.args[0] for m in _queued_messages(app)]
    assert order == ["new", "old"]  # fresh work first, the often-failed row after it


def _queued_messages(app):
    from dramatiq.message import Message

    rows = app.tasks.broker.conn.execute("SELECT body FROM queue_message ORDER BY id")
    return [Message.decode(r[0]) for r in rows]


def test_a_delay_counts_from_the_enqueue_not_from_the_relay(jobs_app):
    app = jobs_app()
    start = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
    with time_machine.travel(start, tick=False):
        with db.connection():
            app.tasks.enqueue("jobs_plugin.tasks.record", "in-10-min", delay_ms=10 * 60 * 1000)
    with time_machine.travel(start + timedelta(minutes=4), tick=False):
        app.tasks.relay()
        eta = app.tasks.broker.conn.execute("SELECT eta FROM queue_message").fetchone()[0]
    assert eta == int((start + timedelta(minutes=10)).timestamp() * 1000)


def test_done_rows_are_pruned_after_a_week_unfinished_ones_stay(jobs_app):
    app = jobs_app()
    start = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
    with time_machine.travel(start, tick=False):
        with db.connection():
            done = app.tasks.enqueue("jobs_plugin.tasks.record", "old-done")
            app.tasks.enqueue("jobs_plugin.tasks.record", "old-lost")
        app.tasks.relay()
        app.tasks.mark_done(done)  # what the worker's OutboxTracking does when it ends
    with time_machine.travel(start + timedelta(days=8), tick=False):
        with db.connection():
            app.tasks.enqueue("jobs_plugin.tasks.record", "new")
        assert app.tasks.prune() == 1  # (the relay prunes at most hourly)
    assert sorted(r.payload["args"][0] for r in outbox()) == ["new", "old-lost"]


# -- done, or sent again (OPS-6) ----------------------------------------------------------


@pytest.mark.spec("OPS-6")
def test_a_worker_marks_each_message_done_however_it_ends(jobs_app, queues, tmp_path):
    app = jobs_app()
    with db.connection():
        ok = app.tasks.enqueue("jobs_plugin.tasks.record", "ok")
        retried = app.tasks.enqueue("jobs_plugin.tasks.flaky", "f", 1)
        dead = app.tasks.enqueue("jobs_plugin.tasks.doomed", "d")
    app.tasks.relay()
    sent = {r.message_id: r.redeliver_at for r in outbox()}
    assert all(sent.values())
    with RunningWorker(app):
        wait_for(lambda: all(r.done_at for r in outbox()), what="every message done")
    rows = {r.message_id: r for r in outbox()}
    assert all(r.redeliver_at is None for r in rows.values())
    assert runs("record") == ["ok"] and runs("flaky-done") == ["f"]
    assert runs("doomed-attempt") == ["d", "d"]  # given up after its retry: done, not resent
    assert app.tasks.redeliver(now=db.utcnow() + timedelta(days=30)) == 0
    assert {ok, retried, dead} == set(rows)


@pytest.mark.spec("OPS-6")
def test_a_message_the_broker_lost_is_sent_again_and_runs_once(jobs_app):
    app = jobs_app()
    with db.connection():
        app.tasks.enqueue("jobs_plugin.tasks.record", "lost")
    app.tasks.relay()
    app.tasks.broker.flush_all()  # the broker restarted empty
    [row] = outbox()
    assert row.sent_at and row.done_at is None
    assert app.tasks.redeliver(now=row.redeliver_at - timedelta(seconds=1)) == 0
    assert app.tasks.redeliver(now=row.redeliver_at + timedelta(seconds=1)) == 1
    assert app.tasks.redeliver(now=row.redeliver_at + timedelta(seconds=1)) == 0  # once
    assert app.tasks.relay() == 1
    with RunningWorker(app):
        wait_for(lambda: outbox()[0].done_at, what="the message sent again to be done")
    assert runs("record") == ["lost"]
    assert "sent again" in outbox()[0].last_error


def test_redeliver_after_must_outlast_every_task(jobs_app):
    from engine.settings import SettingsError

    with pytest.raises(
        SettingsError,
        match=r"tasks.redeliver_after: 1800 seconds is not longer "
        r"than the time limit of \S+ \(1800 seconds\)",
    ):  # the longest: 30 minutes
        jobs_app(tasks={"redeliver_after": 1800})
    assert jobs_app(tasks={"redeliver_after": 1801}).tasks.redeliver_after.seconds == 1801


# -- concurrent relays -----------------------------------------------------------------


@pytest.mark.redis
def test_relays_in_parallel_threads_send_each_message_once(jobs_app, queues, tmp_path):
    app = jobs_app(broker_url=queues.url("redis", tmp_path))
    with db.connection(), db.database.atomic():
        for i in range(400):
            app.tasks.enqueue("jobs_plugin.tasks.record", str(i))
    start = threading.Barrier(4)
    counts: list[int] = []

    def relay_all():
        start.wait()
        sent = 0
        while app.tasks.pending():
            sent += app.tasks.relay(limit=25)
        counts.append(sent)

    threads = [threading.Thread(target=relay_all) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sum(counts) == 400
    assert redis_messages(app, queues.queue) == 400  # a message sent twice would show here


@pytest.mark.redis
def test_relays_in_parallel_processes_send_each_message_once(jobs_app, queues, tmp_path):
    app = jobs_app(broker_url=queues.url("redis", tmp_path))
    with db.connection(), db.database.atomic():
        for i in range(400):
            app.tasks.enqueue("jobs_plugin.tasks.record", str(i))
    go = tmp_path / "go"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        import jobs_plugin
        from engine.app import create_app
        from engine.settings import load_settings
        app = create_app(load_settings(), extra_plugins=[("jobs", jobs_plugin)])
        while not Path({str(go)!r}).exists():
            time.sleep(0.01)
        sent = 0
        while app.tasks.pending():
            sent += app.tasks.relay(limit=25)
        print(sent)
    """)
    env = portico_env(app, tmp_path, PORTICO_PLUGINS_ENTRY_POINTS="false")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env=env,
            cwd=str(REPO),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    go.touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outputs]
    assert sum(int(out.split()[-1]) for out, _ in outputs) == 400
    assert redis_messages(app, queues.queue) == 400


# -- periodic jobs ---------------------------------------------------------------------

MONDAY_0800 = datetime(2026, 3, 2, 8, 0, 5, tzinfo=timezone.utc)


def _schedule_once(scheduler: Scheduler) -> None:
    """periodiq's own ``schedule()`` (pick the due actors, send, arm the alarm), alarm disarmed."""
    previous = signal.getsignal(signal.SIGALRM)
    try:
        scheduler.schedule()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _jobs_rows() -> list[OutboxMessage]:
    return [
        r for r in outbox() if r.actor.startswith("jobs_plugin.")
    ]  # other plugins have clocks too


def _ticks():
    return [(r.actor, r.payload["options"]["scheduled_at"]) for r in _jobs_rows()]


def test_scheduler_sends_only_the_actors_due_now(jobs_app):
    app = jobs_app()
    with time_machine.travel(MONDAY_0800, tick=True):
        _schedule_once(Scheduler(app))
    assert [a for a, _ in _ticks()] == ["jobs_plugin.tasks.tick"]  # "* * * * *" yes, "0 2 * * *" no
    with time_machine.travel(MONDAY_0800.replace(hour=2), tick=True):
        _schedule_once(Scheduler(app))
    assert sorted(a for a, _ in _ticks()[1:]) == [
        "jobs_plugin.tasks.nightly",
        "jobs_plugin.tasks.tick",
    ]


def test_each_minute_is_recorded_once_however_many_schedulers_run(jobs_app, queues):
    app, other = jobs_app(), jobs_app()
    with time_machine.travel(MONDAY_0800, tick=True):
        for scheduler in (Scheduler(app), Scheduler(other), Scheduler(app)):
            _schedule_once(scheduler)
    [(actor, scheduled_at)] = _ticks()
    assert actor == "jobs_plugin.tasks.tick" and scheduled_at.startswith("2026-03-02")
    assert _jobs_rows()[0].sent_at is not None  # the scheduler relayed it itself
    assert app.tasks.broker.pending(queues.queue) == 1


def test_a_scheduled_run_reaches_the_worker(jobs_app):
    app = jobs_app()
    with time_machine.travel(MONDAY_0800, tick=True):
        _schedule_once(Scheduler(app))
        with RunningWorker(app):
            wait_for(lambda: runs("tick"), what="the periodic run")
    from jobs_plugin.models import JobRun

    with db.connection():
        [run] = JobRun.select().where(JobRun.name == "tick")
    assert pendulum.parse(run.scheduled_at) == pendulum.instance(MONDAY_0800).replace(second=5)


def test_a_run_delayed_by_an_outage_runs_once_not_once_per_missed_minute(jobs_app, queues):
    down = jobs_app(broker_url=f"redis://127.0.0.1:{free_port()}/0")
    for minute in range(5):  # five minutes of broker outage: five runs wait in the outbox
        with time_machine.travel(MONDAY_0800 + timedelta(minutes=minute), tick=True):
            _schedule_once(Scheduler(down))
    assert len(_ticks()) == 5 and all(r.sent_at is None for r in _jobs_rows())
    back = jobs_app()
    with time_machine.travel(MONDAY_0800 + timedelta(minutes=4, seconds=20), tick=True):
        back.tasks.relay()
        assert all(r.sent_at is not None for r in _jobs_rows())
        with RunningWorker(back):
            wait_for(
                lambda: back.tasks.broker.pending(queues.queue) == 0, what="the queue to drain"
            )
    assert len(runs("tick")) == 1  # the four stale runs were skipped, the latest ran


def _middleware_verdict(app, actor_name: str, scheduled: datetime, now: datetime) -> str:
    from dramatiq.message import Message
    from dramatiq.middleware import SkipMessage

    message = Message(
        queue_name="jobs",
        actor_name=actor_name,
        args=(),
        kwargs={},
        options={"scheduled_at": str(pendulum.instance(scheduled))},
    )
    with time_machine.travel(now, tick=False):
        try:
            PeriodicMiddleware().before_process_message(app.tasks.broker, message)
        except SkipMessage:
            return "skip"
    return "run"


def test_a_late_daily_run_still_runs_but_a_superseded_one_does_not(jobs_app):
    app = jobs_app()
    two = MONDAY_0800.replace(hour=2, second=0)
    assert (
        _middleware_verdict(app, "jobs_plugin.tasks.nightly", two, two + timedelta(minutes=40))
        == "run"
    )
    assert (
        _middleware_verdict(app, "jobs_plugin.tasks.nightly", two, two + timedelta(days=1))
        == "skip"
    )
    assert (
        _middleware_verdict(app, "jobs_plugin.tasks.tick", two, two + timedelta(seconds=30))
        == "run"
    )
    assert (
        _middleware_verdict(app, "jobs_plugin.tasks.tick", two, two + timedelta(minutes=1))
        == "skip"
    )
