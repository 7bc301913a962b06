"""Background work: dramatiq actors from plugins, a transactional outbox, the broker by URL.

A plugin writes plain functions taking ``app`` first and marks them ``@task``;
``register_actors`` returns them, and each becomes the actor named after the function
(``<module>.<function>``, ``task_name``). Business code calls
``app.tasks.enqueue(render_invoice_pdf, invoice_id)`` *inside* its
transaction: that writes an outbox row, so the work exists exactly when the
change does. After commit the relay moves rows to the broker; if the process
dies first or the broker is down, the rows wait and the next relay (after the
next request, or the worker's relay thread) sends them.

The row stays until a worker has finished the message (``done_at``, set by
``OutboxTracking``): a row sent but not done after ``tasks.redeliver_after``
was lost by the broker (a Redis restarted empty) and is sent again (OPS-6).

Delivery is at least once: a message can run twice (a relay that died after
sending but before marking its row, a worker killed mid-task, a slow message
sent again). Tasks are written to be safe to repeat; ``current_message_id()``
helps them. See ``docs/background-work.md``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable, Iterator, cast
from urllib.parse import parse_qsl, urlencode, urlparse

import dramatiq
import pendulum
from dramatiq.message import Message
from dramatiq.middleware import CurrentMessage, Middleware, Retries, SkipMessage
from periodiq import PeriodiqMiddleware, cron

from engine import db
from engine.models import OutboxMessage
from engine.observe.logs import request_id
from engine.observe.metrics import TaskMetrics

if TYPE_CHECKING:
    from engine.queue_sqlite import SQLiteBroker

log = logging.getLogger("portico.tasks")
TASK_ATTR = "__portico_task__"
#: Periodic runs get a message id derived from (actor, minute): one run per minute.
TICK_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://portico/periodic-tick")
#: Done outbox rows are kept this long (to answer "did it run?"), then pruned.
KEEP_DONE = timedelta(days=7)
#: How often a process looks for messages to send again (cheap: an indexed UPDATE).
REDELIVER_CHECK_SECONDS = 60
#: The queue for heavy work nobody is waiting on (PDF renders, archives, bill runs). A worker
#: consumes it beside ``default`` at a lower priority, so a bill run of a thousand invoices
#: never keeps a password-reset email or an add-on's provisioning waiting behind it.
BULK_QUEUE = "bulk"
#: dramatiq runs the lowest priority number first; bulk actors default to this.
BULK_PRIORITY = 100


def task_name(fn: Callable[..., Any]) -> str:
    """The actor name of a task: its module and function, ``plugins.billing.tasks.render_pdf``.

    Derived from the code, so it does not change with the name a plugin is installed under.
    """
    return f"{fn.__module__}.{fn.__name__}"


def task(
    fn: Callable | None = None,
    *,
    queue: str = "default",
    max_retries: int = 10,
    min_backoff: int = 1000,
    max_backoff: int = 5 * 60 * 1000,
    time_limit: int = 5 * 60 * 1000,
    periodic: str | None = None,
    priority: int | None = None,
):
    """Mark ``fn(app, ...)`` as a background task.

    ``periodic`` is a cron spec ("0 2 * * *") read in the portal's
    ``default_timezone``; ``portico scheduler`` sends the task on it. Times are
    milliseconds; a failing task is retried ``max_retries`` times with
    exponential backoff between ``min_backoff`` and ``max_backoff``.
    ``queue=BULK_QUEUE`` is for heavy work nobody waits on; a worker runs it
    after anything waiting on other queues (``priority``: lowest number first,
    0 by default and ``BULK_PRIORITY`` on the bulk queue).
    """
    if priority is None:
        priority = BULK_PRIORITY if queue == BULK_QUEUE else 0

    def mark(f):
        if periodic is not None:
            try:
                cron(periodic)
            except (ValueError, IndexError, KeyError) as exc:
                raise ValueError(
                    f"task '{f.__name__}': periodic={periodic!r} is not a cron "
                    f"spec like '0 2 * * *' ({exc})"
                ) from None
        setattr(
            f,
            TASK_ATTR,
            {
                "queue_name": queue,
                "max_retries": max_retries,
                "min_backoff": min_backoff,
                "max_backoff": max_backoff,
                "time_limit": time_limit,
                "periodic": periodic,
                "priority": priority,
            },
        )
        return f

    return mark(fn) if fn is not None else mark


class PeriodicMiddleware(PeriodiqMiddleware):
    """periodiq's middleware, coalescing late runs instead of dropping them.

    A run that arrives late (the broker was down at its time) still runs,
    unless the next run of the same schedule is already due: after an outage a
    daily job runs once, late; an every-minute job does not run once per
    missed minute.
    """

    def before_process_message(self, broker, message):
        actor = broker.actors[message.actor_name]
        spec = actor.options.get("periodic")
        scheduled = message.options.get("scheduled_at")
        if spec is None or scheduled is None:
            return  # an ordinary message, or a periodic task sent by hand
        if spec.next_valid_date(pendulum.parse(scheduled)) <= pendulum.now():
            log.info("skipping %s run of %s: a newer run is due", scheduled, message.actor_name)
            raise SkipMessage()


class OutboxTracking(Middleware):
    """Tells the outbox how each message ended, so the sweep re-sends only lost ones.

    Done: it succeeded, was skipped, or failed for good (retries used up, dead-lettered).
    A retry the worker puts back on the broker moves the row's ``redeliver_at`` past its
    backoff. Sits before ``Retries`` in the list: ``after_*`` hooks run in reverse order,
    so it sees ``message.failed`` as Retries left it.
    """

    def __init__(self, runner: "TaskRunner"):
        self.runner = runner

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if exception is None or message.failed:
            self.runner.mark_done(message.message_id)

    def after_skip_message(self, broker, message):
        self.runner.mark_done(message.message_id)

    def after_enqueue(self, broker, message, delay):
        if message.options.get("retries"):  # the worker's retry, not the relay's send
            self.runner.postpone(message.message_id, delay)


def make_broker(url: str) -> dramatiq.Broker:
    """``redis://host:port/db?namespace=x``, ``amqp://user:pw@host/vhost`` or ``sqlite:///path``."""
    parts = urlparse(url)
    # TaskMetrics first: it times the run and sees skips and dead letters (OPS-4).
    middleware = (
        [TaskMetrics()]
        + [m() for m in dramatiq.middleware.default_middleware]
        + [CurrentMessage(), PeriodicMiddleware()]
    )
    options = dict(parse_qsl(parts.query))
    if parts.scheme in ("redis", "rediss"):
        import redis
        from dramatiq.brokers.redis import RedisBroker

        namespace = options.pop("namespace", "portico")
        # Time-outs, so an unreachable Redis fails a relay or /healthz instead of hanging it.
        pool = redis.ConnectionPool.from_url(
            parts._replace(query=urlencode(options)).geturl(),
            **{"socket_connect_timeout": 5, "socket_timeout": 30, **options},
        )
        return RedisBroker(
            client=redis.Redis(connection_pool=pool), namespace=namespace, middleware=middleware
        )
    if parts.scheme in ("amqp", "amqps"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        defaults = {
            "connection_attempts": "1",
            "socket_timeout": "5",
            "blocked_connection_timeout": "30",
        }  # a blocked RabbitMQ fails the send
        query = urlencode({**defaults, **options})
        # confirm_delivery: the outbox marks a row sent only once RabbitMQ has it.
        return RabbitmqBroker(
            url=parts._replace(query=query).geturl(), confirm_delivery=True, middleware=middleware
        )
    if parts.scheme == "sqlite":
        from engine.queue_sqlite import SQLiteBroker

        path = parts.path if parts.netloc in ("", "localhost") else parts.netloc + parts.path
        return SQLiteBroker(path, middleware=middleware)
    raise ValueError(
        f"broker_url: unsupported scheme '{parts.scheme}' (use redis://, amqp:// or sqlite:///path)"
    )


def ping_broker(broker: dramatiq.Broker) -> None:
    """Raise unless the broker answers now (``/healthz``)."""
    from dramatiq.brokers.rabbitmq import RabbitmqBroker
    from dramatiq.brokers.redis import RedisBroker

    if isinstance(broker, RedisBroker):
        broker.client.ping()
    elif isinstance(broker, RabbitmqBroker):
        # A thread's connection may have been closed by the server while idle
        # (missed heartbeats): one fresh connection decides.
        for attempt in (1, 2):
            try:
                broker.connection.process_data_events(time_limit=0)
                return
            except Exception:
                with contextlib.suppress(Exception):
                    del broker.connection
                if attempt == 2:
                    raise
    else:  # make_broker's third kind, the embedded queue
        cast("SQLiteBroker", broker).ping()


def current_message_id() -> str | None:
    """The id of the message being processed (stable across retries): use it to deduplicate."""
    message = CurrentMessage.get_current_message()
    return message.message_id if message is not None else None


class TaskRunner:
    """The actors of one app, the outbox and the relay."""

    def __init__(self, app):
        self.app = app
        self.broker = make_broker(app.settings.broker_url)
        self.actors: dict[str, dramatiq.Actor] = {}
        self._local = threading.local()
        self._thread_lock = threading.Lock()
        self._pruned_at: float | None = None
        self._swept_at: float | None = None
        self.redeliver_after = timedelta(seconds=app.settings.tasks.redeliver_after)
        self.broker.add_middleware(OutboxTracking(self), before=Retries)
        named = [(p, (task_name(f), f)) for p, f in app.plugins.collect("register_actors")]
        for name, (plugin, (_, fn)) in app.plugins.unique(named, lambda i: i[0], "actor").items():
            options = dict(getattr(fn, TASK_ATTR, None) or {})
            if not options:
                from engine.plugins import PluginError

                raise PluginError(
                    f"plugin '{plugin}' registers actor '{name}' without @task; "
                    "decorate it with engine.tasks.task"
                )
            periodic = options.pop("periodic")
            if periodic:
                options["periodic"] = cron(periodic)
            self.actors[name] = dramatiq.actor(broker=self.broker, actor_name=name, **options)(
                self._bind(fn)
            )
        self._check_redeliver_after()

    def _check_redeliver_after(self) -> None:
        """A message still running must not be sent again: the setting outlasts every task."""
        if not self.actors:
            return
        longest = max(self.actors.values(), key=lambda a: a.options.get("time_limit", 0))
        limit = timedelta(milliseconds=longest.options.get("time_limit", 0))
        if self.redeliver_after <= limit:
            from engine.settings import SettingsError

            raise SettingsError(
                f"tasks.redeliver_after: {int(self.redeliver_after.total_seconds())} seconds "
                f"is not longer than the time limit of {longest.actor_name} "
                f"({int(limit.total_seconds())} seconds): a running task would be sent again"
            )

    def _bind(self, fn: Callable) -> Callable:
        runner = self

        def run(*args, **kwargs):
            with db.connection():
                result = fn(runner.app, *args, **kwargs)
                runner.relay_after_request(None)  # work this task enqueued goes out now
                return result

        run.__name__ = fn.__name__
        run.__module__ = fn.__module__
        run.__doc__ = fn.__doc__
        return run

    # -- enqueueing -------------------------------------------------------------

    def enqueue(
        self, actor: str | Callable[..., Any], *args: Any, delay_ms: int = 0, **kwargs: Any
    ) -> str:
        """Record work to run after the current transaction commits; returns the message id.

        ``actor`` is the ``@task`` function (or its ``task_name``). Arguments must be JSON
        values: pass ids, not model objects.
        """
        actor_name = actor if isinstance(actor, str) else task_name(actor)
        found = self.actors.get(actor_name)
        if found is None:
            raise LookupError(f"no actor named '{actor_name}' (is its plugin enabled?)")
        payload: dict[str, Any] = {"args": list(args), "kwargs": kwargs}
        if request_id.get():  # the task's log lines carry the request that asked for it
            payload["options"] = {"request_id": request_id.get()}
        try:
            json.dumps(payload)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"task '{actor_name}': arguments must be JSON values (pass ids, not objects): {exc}"
            ) from None
        message_id = str(uuid.uuid4())
        OutboxMessage.create(
            message_id=message_id,
            actor=actor_name,
            queue=found.queue_name,
            payload=payload,
            delay_ms=max(0, int(delay_ms)),
        )
        self._local.dirty = True
        return message_id

    def is_last_attempt(self) -> bool:
        """Inside a task: no retry follows if this run fails (settle the work as failed)."""
        message = CurrentMessage.get_current_message()
        if message is None:
            return True  # run by hand: nothing retries it
        actor = self.actors.get(message.actor_name)
        limit = message.options.get(
            "max_retries", actor.options.get("max_retries", 20) if actor else 0
        )
        return message.options.get("retries", 0) >= limit

    def periodic_actors(self) -> list[dramatiq.Actor]:
        return [a for a in self.actors.values() if "periodic" in a.options]

    def record_ticks(self, actors: list[dramatiq.Actor], now: pendulum.DateTime) -> list[str]:
        """Record one run of each actor scheduled at ``now``; returns the message ids.

        The message id is derived from the actor and the minute, so a second
        scheduler (or a restarted one) recording the same minute adds nothing.
        """
        minute = now.in_timezone("UTC").replace(second=0, microsecond=0).isoformat()
        ids = []
        with db.connection():
            for actor in actors:
                message_id = str(uuid.uuid5(TICK_NAMESPACE, f"{actor.actor_name}@{minute}"))
                (
                    OutboxMessage.insert(
                        message_id=message_id,
                        actor=actor.actor_name,
                        queue=actor.queue_name,
                        payload={"args": [], "kwargs": {}, "options": {"scheduled_at": str(now)}},
                    )
                    .on_conflict_ignore()
                    .execute()
                )
                ids.append(message_id)
        return ids

    # -- relaying ---------------------------------------------------------------

    def relay(self, limit: int = 100) -> int:
        """Send unsent outbox rows to the broker; returns how many went. Safe to call anywhere.

        Only committed rows go: called inside a transaction it does nothing. Any
        number of relays may run at once (threads, web and worker processes):
        each row is claimed by one of them.
        """
        if db.database.obj is None or db.database.in_transaction():
            return 0
        sent = 0
        with db.connection():
            self._redeliver_sometimes()  # lost messages go back to unsent, and out below
            while True:
                with self._claimed(limit) as rows:
                    if rows is None:
                        return sent  # another relay holds the outbox right now
                    batch, failed = self._send(rows)
                sent += batch
                if failed or len(rows) < limit:
                    break
            self._prune_hourly()
        return sent

    @contextlib.contextmanager
    def _claimed(self, limit: int) -> Iterator[list[OutboxMessage] | None]:
        """Unsent rows no other relay is sending, or None when the outbox is busy.

        PostgreSQL: rows locked ``FOR UPDATE SKIP LOCKED`` in a transaction
        that also records the sends, so concurrent relays share the work.
        SQLite (one host): an exclusive lock on a file beside the database;
        unlike a write transaction it never makes a web request wait.
        """
        query = (
            OutboxMessage.select()
            .where(
                OutboxMessage.sent_at.is_null(), OutboxMessage.actor.in_(list(self.actors) or [""])
            )
            .order_by(OutboxMessage.attempts, OutboxMessage.id)  # a failing row goes last
            .limit(limit)
        )
        if db.is_postgres():
            with db.database.atomic():
                yield list(query.for_update(skip_locked=True))
            return
        with self._relay_lock() as locked:
            yield list(query) if locked else None

    @contextlib.contextmanager
    def _relay_lock(self) -> Iterator[bool]:
        path = getattr(db.database.obj, "database", ":memory:")
        if not path or ":memory:" in path:
            locked = self._thread_lock.acquire(blocking=False)
            try:
                yield locked
            finally:
                if locked:
                    self._thread_lock.release()
            return
        fd = os.open(f"{path}-relay.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # per open file: threads too
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # closing releases the lock

    def _send(self, rows: list[OutboxMessage]) -> tuple[int, bool]:
        """Send rows in order; stop at the first failure. Returns (sent, failed)."""
        sent = 0
        for row in rows:
            try:
                self.broker.enqueue(self._message(row), delay=self._delay(row))
            except Exception as exc:  # broker down: keep the row, try again later
                error = f"{type(exc).__name__}: {exc}"[:500]
                (
                    OutboxMessage.update(attempts=OutboxMessage.attempts + 1, last_error=error)
                    .where(OutboxMessage.id == row.id)
                    .execute()
                )
                log.warning(
                    "broker unavailable, %d message(s) wait in the outbox: %s",
                    len(rows) - sent,
                    error,
                )
                return sent, True
            now = db.utcnow()
            (
                OutboxMessage.update(
                    sent_at=now, redeliver_at=self._redeliver_at(now, self._delay(row))
                )
                .where(OutboxMessage.id == row.id)
                .execute()
            )
            sent += 1
        return sent, False

    @staticmethod
    def _message(row: OutboxMessage) -> Message:
        payload = row.payload
        return Message(
            queue_name=row.queue,
            actor_name=row.actor,
            args=tuple(payload["args"]),
            kwargs=payload["kwargs"],
            options=dict(payload.get("options") or {}),
            message_id=row.message_id,
            message_timestamp=int(row.created_at.timestamp() * 1000),
        )

    @staticmethod
    def _delay(row: OutboxMessage) -> int | None:
        """What is left of the requested delay (the row may have waited out an outage)."""
        if not row.delay_ms:
            return None
        due = row.created_at + timedelta(milliseconds=row.delay_ms)
        left = int((due - db.utcnow()).total_seconds() * 1000)
        return left if left > 0 else None

    # -- finishing and sending again (OPS-6) ------------------------------------

    def _redeliver_at(self, now, delay_ms: int | None):
        return now + timedelta(milliseconds=delay_ms or 0) + self.redeliver_after

    def mark_done(self, message_id: str) -> None:
        """The message finished (or was given up): the sweep leaves its row alone."""
        try:
            with db.connection():
                (
                    OutboxMessage.update(done_at=db.utcnow(), redeliver_at=None)
                    .where(OutboxMessage.message_id == message_id, OutboxMessage.done_at.is_null())
                    .execute()
                )
        except Exception as exc:  # the database is down: the row is sent again later, harmless
            log.warning("could not mark message %s done: %s", message_id, exc)

    def postpone(self, message_id: str, delay_ms: int | None) -> None:
        """A retry waits ``delay_ms`` on the broker: do not count it lost meanwhile."""
        try:
            with db.connection():
                (
                    OutboxMessage.update(redeliver_at=self._redeliver_at(db.utcnow(), delay_ms))
                    .where(OutboxMessage.message_id == message_id, OutboxMessage.done_at.is_null())
                    .execute()
                )
        except Exception as exc:
            log.warning("could not postpone message %s: %s", message_id, exc)

    def redeliver(self, now=None) -> int:
        """Send again every message handed to the broker but not done by its ``redeliver_at``.

        The row goes back to unsent, so the relay sends it (same message id). One UPDATE:
        any number of processes may sweep at once, each row goes back once.
        """
        now = now or db.utcnow()
        with db.connection():
            count = (
                OutboxMessage.update(
                    sent_at=None,
                    redeliver_at=None,
                    last_error=f"not finished by {now:%Y-%m-%d %H:%M:%S} UTC: sent again",
                )
                .where(
                    OutboxMessage.redeliver_at < now,
                    OutboxMessage.done_at.is_null(),
                    OutboxMessage.actor.in_(list(self.actors) or [""]),
                )
                .execute()
            )
        if count:
            log.warning(
                "sending %d message(s) again: handed to the broker but not finished "
                "within tasks.redeliver_after (was the broker restarted empty?)",
                count,
            )
        return count

    def _redeliver_sometimes(self) -> None:
        if (
            self._swept_at is not None
            and time.monotonic() - self._swept_at < REDELIVER_CHECK_SECONDS
        ):
            return
        self._swept_at = time.monotonic()
        self.redeliver()

    def _prune_hourly(self) -> None:
        if self._pruned_at is not None and time.monotonic() - self._pruned_at < 3600:
            return
        self._pruned_at = time.monotonic()
        self.prune()

    def prune(self) -> int:
        """Delete outbox rows done more than a week ago (the relay does it hourly).

        Rows sent but never done stay: the sweep sends them until they are.
        """
        with db.connection():
            return (
                OutboxMessage.delete()
                .where(OutboxMessage.done_at < db.utcnow() - KEEP_DONE)
                .execute()
            )

    def relay_after_request(self, ctx) -> None:
        """Cheap after a request: relay only when this thread wrote to the outbox."""
        if getattr(self._local, "dirty", False):
            self._local.dirty = False
            self.relay()

    def pending(self) -> int:
        """Outbox rows not yet sent."""
        with db.connection():
            return OutboxMessage.select().where(OutboxMessage.sent_at.is_null()).count()

    # -- running ----------------------------------------------------------------

    def ping(self) -> None:
        ping_broker(self.broker)

    def worker(self, threads: int = 2) -> dramatiq.Worker:
        """A dramatiq worker for this app's broker (start() it; stop() it)."""
        return dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=200)
