"""The embedded broker: a dramatiq broker kept in a SQLite file, for one machine.

Why our own: the one published SQLite broker (dramatiq-sqlite 0.1) never
redelivers a message whose worker died and its requeue query is invalid SQL.
This one leases each message; a lease that runs out (the worker was killed)
makes the message visible again, so nothing is lost. Delays are an ``eta``
column, so delayed retries survive a restart too.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import dramatiq
from dramatiq.broker import Broker, Consumer, MessageProxy
from dramatiq.common import current_millis, dq_name
from dramatiq.message import Message

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    queue_name TEXT NOT NULL,
    body BLOB NOT NULL,
    eta INTEGER NOT NULL,
    leased_until INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'queued'
);
CREATE INDEX IF NOT EXISTS queue_message_ready ON queue_message (queue_name, state, eta);
"""


class SQLiteBroker(Broker):
    """A persistent broker in one SQLite file (WAL); safe across processes on one host."""

    def __init__(self, path: str, *, lease_ms: int = 10 * 60 * 1000, middleware=None):
        super().__init__(middleware=middleware)
        self.path = str(path)
        self.lease_ms = lease_ms
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as conn:
            conn.executescript(SCHEMA)
        self._local = threading.local()

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        if getattr(self._local, "conn", None) is None:
            self._local.conn = self.connect()
        return self._local.conn

    def declare_queue(self, queue_name: str) -> None:
        if queue_name not in self.queues:
            self.emit_before("declare_queue", queue_name)
            self.queues[queue_name] = None
            self.emit_after("declare_queue", queue_name)
            # Delays live in the eta column, but dramatiq's worker expects the name.
            delayed = dq_name(queue_name)
            self.delay_queues.add(delayed)
            self.emit_after("declare_delay_queue", delayed)

    def enqueue(self, message: Message, *, delay: int | None = None) -> Message:
        queue_name = message.queue_name
        if queue_name.endswith(".DQ"):
            queue_name = queue_name[:-3]
            message = message.copy(queue_name=queue_name)
        self.declare_queue(queue_name)
        self.emit_before("enqueue", message, delay)
        eta = current_millis() + (delay or 0)
        # Re-sending a queued message id (an outbox retry) is a no-op; re-sending a
        # leased one is dramatiq's Retries middleware scheduling the next attempt.
        self.conn.execute(
            "INSERT INTO queue_message (message_id, queue_name, body, eta) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (message_id) DO UPDATE SET body = excluded.body, eta = excluded.eta, "
            "state = 'queued', leased_until = 0 WHERE queue_message.state = 'leased'",
            (message.message_id, queue_name, message.encode(), eta))
        self.emit_after("enqueue", message, delay)
        return message

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 1000) -> Consumer:
        return SQLiteConsumer(self, queue_name, timeout)

    def get_declared_queues(self) -> set[str]:
        return set(self.queues)

    def flush(self, queue_name: str) -> None:
        self.conn.execute("DELETE FROM queue_message WHERE queue_name = ?", (queue_name,))

    def flush_all(self) -> None:
        self.conn.execute("DELETE FROM queue_message")

    def pending(self, queue_name: str | None = None) -> int:
        """Messages not yet done (queued or leased), for tests and ``healthz``."""
        sql = "SELECT count(*) FROM queue_message WHERE state != 'dead'"
        args: tuple = ()
        if queue_name:
            sql += " AND queue_name = ?"
            args = (queue_name,)
        return self.conn.execute(sql, args).fetchone()[0]

    def join(self, queue_name: str, *, timeout: int | None = None) -> None:
        """Block until the queue has no live message (tests)."""
        deadline = time.monotonic() + (timeout / 1000 if timeout else 1e9)
        while self.pending(queue_name):
            if time.monotonic() > deadline:
                raise dramatiq.errors.QueueJoinTimeout(queue_name)
            time.sleep(0.05)


class SQLiteConsumer(Consumer):
    def __init__(self, broker: SQLiteBroker, queue_name: str, timeout: int):
        self.broker = broker
        self.queue_name = queue_name
        self.timeout = timeout / 1000
        self.conn = broker.connect()

    def __next__(self):
        deadline = time.monotonic() + self.timeout
        while True:
            now = current_millis()
            # A lease that ran out means its worker died: the message is visible again.
            row = self.conn.execute(
                "UPDATE queue_message SET state = 'leased', leased_until = ? "
                "WHERE id = (SELECT id FROM queue_message WHERE queue_name = ? AND eta <= ? "
                "AND (state = 'queued' OR (state = 'leased' AND leased_until < ?)) "
                "ORDER BY eta, id LIMIT 1) RETURNING id, body",
                (now + self.broker.lease_ms, self.queue_name, now, now)).fetchone()
            if row is not None:
                message = Message.decode(row[1])
                message.options["sqlite_id"] = row[0]
                return MessageProxy(message)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    # ack/nack touch the row only while still leased: a retry has re-queued it.
    def ack(self, message) -> None:
        self.conn.execute("DELETE FROM queue_message WHERE id = ? AND state = 'leased'",
                          (message.options["sqlite_id"],))

    def nack(self, message) -> None:
        self.conn.execute("UPDATE queue_message SET state = 'dead' WHERE id = ? AND state = 'leased'",
                          (message.options["sqlite_id"],))

    def requeue(self, messages) -> None:
        for message in messages:
            self.conn.execute(
                "UPDATE queue_message SET state = 'queued', leased_until = 0 WHERE message_id = ?",
                (message.message_id,))

    def close(self) -> None:
        self.conn.close()

