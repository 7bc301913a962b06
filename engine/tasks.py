"""Background work: dramatiq actors from plugins, a transactional outbox, the broker by URL.

A plugin writes plain functions taking ``app`` first and marks them ``@task``;
``register_actors`` returns them. Business code calls
``app.tasks.enqueue("billing.render_pdf", invoice_id)`` *inside* its
transaction: that writes an outbox row, so the work exists exactly when the
change does. After commit the relay moves rows to the broker; if the process
dies first or the broker is down, the rows wait and the next relay (after the
next request, or the worker's periodic relay) sends them.
"""
from __future__ import annotations

import logging
import threading
import uuid
from typing import Any, Callable
from urllib.parse import parse_qsl, urlparse

import dramatiq
from dramatiq.message import Message
from dramatiq.middleware import CurrentMessage
from periodiq import PeriodiqMiddleware, cron

from engine import db
from engine.models import OutboxMessage

log = logging.getLogger("portico.tasks")
TASK_ATTR = "__portico_task__"


def task(fn: Callable | None = None, *, queue: str = "default", max_retries: int = 10,
         min_backoff: int = 1000, max_backoff: int = 5 * 60 * 1000,
         time_limit: int = 5 * 60 * 1000, periodic: str | None = None):
    """Mark ``fn(app, ...)`` as a background task; ``periodic`` is a cron spec ("0 * * * *")."""
    def mark(f):
        setattr(f, TASK_ATTR, {"queue_name": queue, "max_retries": max_retries,
                               "min_backoff": min_backoff, "max_backoff": max_backoff,
                               "time_limit": time_limit, "periodic": periodic})
        return f
    return mark(fn) if fn is not None else mark


def make_broker(url: str) -> dramatiq.Broker:
    """``redis://host:port/db?namespace=x``, ``amqp://user:pw@host/vhost`` or ``sqlite:///path``."""
    parts = urlparse(url)
    middleware = [m() for m in dramatiq.middleware.default_middleware] + \
        [CurrentMessage(), PeriodiqMiddleware(skip_delay=60)]
    if parts.scheme in ("redis", "rediss"):
        from dramatiq.brokers.redis import RedisBroker
        options = dict(parse_qsl(parts.query))
        namespace = options.pop("namespace", "portico")
        clean = parts._replace(query="").geturl()
        return RedisBroker(url=clean, namespace=namespace, middleware=middleware)
    if parts.scheme in ("amqp", "amqps"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker
        return RabbitmqBroker(url=url, middleware=middleware)
    if parts.scheme == "sqlite":
        from engine.queue_sqlite import SQLiteBroker
        return SQLiteBroker(parts.path, middleware=middleware)
    raise ValueError(f"broker_url: unsupported scheme '{parts.scheme}' "
                     "(use redis://, amqp:// or sqlite:///path)")


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
        self._relay_lock = threading.Lock()
        self._local = threading.local()
        named = [(p, (f"{p}.{f.__name__}", f)) for p, f in app.plugins.collect("register_actors")]
        for name, (plugin, (_, fn)) in app.plugins.unique(named, lambda i: i[0], "actor").items():
            options = dict(getattr(fn, TASK_ATTR, None) or {})
            if not options:
                from engine.plugins import PluginError
                raise PluginError(f"plugin '{plugin}' registers actor '{name}' without @task; "
                                  "decorate it with engine.tasks.task")
            periodic = options.pop("periodic")
            if periodic:
                options["periodic"] = cron(periodic)
            self.actors[name] = dramatiq.actor(self._bind(fn), broker=self.broker,
                                               actor_name=name, **options)

    def _bind(self, fn: Callable) -> Callable:
        app = self.app

        def run(*args, **kwargs):
            with db.connection():
                return fn(app, *args, **kwargs)
        run.__name__ = fn.__name__
        run.__module__ = fn.__module__
        return run

    # -- enqueueing -------------------------------------------------------------

    def enqueue(self, actor_name: str, *args: Any, delay_ms: int = 0, **kwargs: Any) -> str:
        """Record work to run after the current transaction commits; returns the message id."""
        actor = self.actors.get(actor_name)
        if actor is None:
            raise LookupError(f"no actor named '{actor_name}' (is its plugin enabled?)")
        message_id = str(uuid.uuid4())
        OutboxMessage.create(message_id=message_id, actor=actor_name, queue=actor.queue_name,
                             payload={"args": list(args), "kwargs": kwargs}, delay_ms=delay_ms)
        self._local.dirty = True
        return message_id

    def relay(self, limit: int = 200) -> int:
        """Send unsent outbox rows to the broker; returns how many went. Safe to call anywhere."""
        if not self._relay_lock.acquire(blocking=False):
            return 0
        sent = 0
        try:
            with db.connection():
                rows = list(OutboxMessage.select()
                            .where(OutboxMessage.sent_at.is_null())
                            .order_by(OutboxMessage.id).limit(limit))
                for row in rows:
                    if row.actor not in self.actors:
                        continue  # its plugin is disabled here; leave it for a node that has it
                    message = Message(queue_name=row.queue, actor_name=row.actor,
                                      args=tuple(row.payload["args"]),
                                      kwargs=row.payload["kwargs"], options={},
                                      message_id=row.message_id)
                    try:
                        self.broker.enqueue(message, delay=row.delay_ms or None)
                    except Exception as exc:  # broker down: keep the row, try again later
                        (OutboxMessage.update(attempts=OutboxMessage.attempts + 1,
                                              last_error=str(exc)[:500])
                         .where(OutboxMessage.id == row.id).execute())
                        log.warning("broker unavailable, %s stays in the outbox: %s",
                                    row.message_id, exc)
                        break
                    (OutboxMessage.update(sent_at=db.utcnow())
                     .where(OutboxMessage.id == row.id).execute())
                    sent += 1
        finally:
            self._relay_lock.release()
        return sent

    def relay_after_request(self, ctx) -> None:
        """Cheap after a request: relay only when this process wrote to the outbox."""
        if getattr(self._local, "dirty", False):
            self._local.dirty = False
            self.relay()

    def pending(self) -> int:
        with db.connection():
            return OutboxMessage.select().where(OutboxMessage.sent_at.is_null()).count()

    def worker(self, threads: int = 2) -> dramatiq.Worker:
        """A dramatiq worker for this app's broker (start() it; stop() it)."""
        return dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=200)

