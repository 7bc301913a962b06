"""The embedded broker: a dramatiq broker kept in a SQLite file, for one machine.

Why our own: the one published SQLite broker (dramatiq-sqlite 0.1) never
redelivers a message whose worker died and its requeue query is invalid SQL.
This one leases each message to one consumer; a lease that runs out (its
worker was killed) makes the message visible again, so nothing is lost.
A lease lasts the longest ``time_limit`` of the queue's actors plus a grace
period, so a task still running is never handed to a second worker.

Delays (``send_with_options(delay=...)``, dramatiq's retry backoff) are an
``eta`` column, so a delayed message or a pending retry survives a restart.
Each lease carries a random token: an ack, nack or retry from a worker whose
lease has passed to another worker changes nothing.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from pathlib import Path
from urllib.parse import quote

import dramatiq
from dramatiq.broker import Broker, Consumer, MessageProxy
from dramatiq.common import current_millis, q_name
from dramatiq.message import Message

#: dramatiq's TimeLimit default, for actors that set none.
DEFAULT_TIME_LIMIT_MS = 10 * 60 * 1000
#: Dead messages (retries exhausted) are kept this long for inspection.
DEAD_TTL_MS = 7 * 24 * 3600 * 1000
#: How often an idle consumer looks for work.
POLL_SECONDS = 0.1

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    queue_name TEXT NOT NULL,
    body BLOB NOT NULL,
    eta INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    leased_until INTEGER NOT NULL DEFAULT 0,
    lease_token TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS queue_message_ready ON queue_message (queue_name, state, eta);
"""

# A row is ready when it is due and either queued or leased by a worker that is gone.
READY = "eta <= :now AND (state = 'queued' OR (state = 'leased' AND leased_until < :now))"


class SQLiteBroker(Broker):
    """A persistent broker in one SQLite file (WAL); safe across processes on one host."""

    def __init__(self, path: str, *, lease_grace_ms: int = 60_000, middleware=None):
        super().__init__(middleware=middleware)
        path = str(path)
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path  # sqlite:////abs
        self.lease_grace_ms = lease_grace_ms
        self._local = threading.local()
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = self.connect()
        try:
            conn.executescript(SCHEMA)
            columns = {r[1] for r in conn.execute("PRAGMA table_info(queue_message)")}
            if "lease_token" not in columns:  # a file from the first version
                conn.execute(
                    "ALTER TABLE queue_message ADD COLUMN lease_token TEXT NOT NULL DEFAULT ''"
                )
        finally:
            conn.close()

    def connect(self, mode: str = "rwc") -> sqlite3.Connection:
        conn = sqlite3.connect(
            f"file:{quote(self.path)}?mode={mode}",
            uri=True,
            timeout=30,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit: every statement is its own transaction)."""
        if getattr(self._local, "conn", None) is None:
            self._local.conn = self.connect()
        return self._local.conn

    def ping(self) -> None:
        """Raise unless the queue file exists and answers (``/healthz``)."""
        conn = self.connect(mode="rw")  # never re-creates a file that went missing
        try:
            conn.execute("SELECT 1 FROM queue_message LIMIT 1").fetchall()
        finally:
            conn.close()

    def lease_ms(self, queue_name: str) -> int:
        """How long a consumer owns a message: the queue's longest time limit plus grace."""
        limits = [
            a.options.get("time_limit") or DEFAULT_TIME_LIMIT_MS
            for a in self.actors.values()
            if a.queue_name == queue_name
        ]
        return max(limits, default=DEFAULT_TIME_LIMIT_MS) + self.lease_grace_ms

    def declare_queue(self, queue_name: str) -> None:
        # No delay queues: the eta column delays a message, so the worker needs
        # no consumer (and no in-memory holding area) for them.
        if queue_name not in self.queues:
            self.emit_before("declare_queue", queue_name)
            self.queues[queue_name] = None
            self.emit_after("declare_queue", queue_name)

    def enqueue(self, message: Message, *, delay: int | None = None) -> Message:
        queue_name = q_name(message.queue_name)
        if queue_name != message.queue_name:
            message = message.copy(queue_name=queue_name)
        self.declare_queue(queue_name)
        self.emit_before("enqueue", message, delay)
        eta = current_millis() + (delay or 0)
        lease = message.options.get("sqlite_lease")
        # The same message id twice: from the outbox (a re-sent row) it is a
        # no-op; from the worker holding the lease it is dramatiq's Retries
        # middleware scheduling the next attempt, which re-queues the row.
        self.conn.execute(
            "INSERT INTO queue_message (message_id, queue_name, body, eta) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (message_id) DO UPDATE SET body = excluded.body, eta = excluded.eta, "
            "state = 'queued', leased_until = 0, lease_token = '' "
            "WHERE queue_message.state = 'leased' AND queue_message.lease_token = ?",
            (message.message_id, queue_name, _encode(message), eta, lease or "-"),
        )
        self.emit_after("enqueue", message, delay)
        return message

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 1000) -> Consumer:
        return SQLiteConsumer(self, queue_name, prefetch, timeout)

    def get_declared_queues(self) -> set[str]:
        return set(self.queues)

    def flush(self, queue_name: str) -> None:
        self.conn.execute("DELETE FROM queue_message WHERE queue_name = ?", (queue_name,))

    def flush_all(self) -> None:
        self.conn.execute("DELETE FROM queue_message")

    def pending(self, queue_name: str | None = None) -> int:
        """Messages not yet done (queued, delayed or leased)."""
        sql = "SELECT count(*) FROM queue_message WHERE state != 'dead'"
        args: tuple = ()
        if queue_name:
            sql += " AND queue_name = ?"
            args = (queue_name,)
        return self.conn.execute(sql, args).fetchone()[0]

    def pending_ids(self, message_ids: set[str]) -> set[str]:
        """Those of ``message_ids`` still to run (queued, delayed or leased), e.g. to wait on."""
        if not message_ids:
            return set()
        marks = ", ".join("?" * len(message_ids))
        rows = self.conn.execute(
            f"SELECT message_id FROM queue_message WHERE state != 'dead' "
            f"AND message_id IN ({marks})",
            tuple(message_ids),
        )
        return {r[0] for r in rows}

    def dead(self, queue_name: str | None = None) -> list[Message]:
        """Messages whose retries ran out (kept a week), oldest first."""
        sql = "SELECT body FROM queue_message WHERE state = 'dead'"
        args: tuple = ()
        if queue_name:
            sql += " AND queue_name = ?"
            args = (queue_name,)
        return [Message.decode(r[0]) for r in self.conn.execute(sql + " ORDER BY eta", args)]

    def join(self, queue_name: str, *, timeout: int | None = None) -> None:
        """Block until the queue has no live message (tests)."""
        deadline = time.monotonic() + (timeout / 1000 if timeout else 1e9)
        while self.pending(queue_name):
            if time.monotonic() > deadline:
                raise dramatiq.errors.QueueJoinTimeout(queue_name)
            time.sleep(0.05)


def _encode(message) -> bytes:
    """The message as stored: without this broker's lease token."""
    data = message.asdict()
    data["options"] = {k: v for k, v in data["options"].items() if k != "sqlite_lease"}
    return Message(**data).encode()


class SQLiteConsumer(Consumer):
    """Leases up to ``prefetch`` messages at a time, so other workers get the rest."""

    def __init__(self, broker: SQLiteBroker, queue_name: str, prefetch: int, timeout: int):
        self.broker = broker
        self.queue_name = queue_name
        self.prefetch = max(prefetch, 1)
        self.timeout = timeout / 1000
        self.held: set[str] = set()  # lease tokens not yet acked, nacked or requeued
        self.lock = threading.Lock()

    def __next__(self):
        deadline = time.monotonic() + self.timeout
        while True:
            if len(self.held) < self.prefetch:
                message = self._lease()
                if message is not None:
                    return message
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL_SECONDS)

    def _lease(self) -> MessageProxy | None:
        conn = self.broker.conn
        now = current_millis()
        args = {"now": now, "queue": self.queue_name}
        # Look before writing: an idle poll is a read, which never blocks a writer.
        found = conn.execute(
            f"SELECT id FROM queue_message WHERE queue_name = :queue AND {READY} "
            "ORDER BY eta, id LIMIT 1",
            args,
        ).fetchone()
        if found is None:
            return None
        token = secrets.token_hex(8)
        row = conn.execute(
            f"UPDATE queue_message SET state = 'leased', leased_until = :until, lease_token = :token "
            f"WHERE id = :id AND {READY} RETURNING body",
            {
                **args,
                "id": found[0],
                "token": token,
                "until": now + self.broker.lease_ms(self.queue_name),
            },
        ).fetchone()
        if row is None:
            return None  # another consumer took it first; the next poll looks again
        message = Message.decode(row[0])
        message.options["sqlite_lease"] = token
        with self.lock:
            self.held.add(token)
        return MessageProxy(message)

    def _release(self, message) -> str:
        token = message.options.get("sqlite_lease", "")
        with self.lock:
            self.held.discard(token)
        return token

    # Each statement names the lease token: once a retry has re-queued the row,
    # or an expired lease has passed it to another worker, these change nothing.
    def ack(self, message) -> None:
        token = self._release(message)
        self.broker.conn.execute(
            "DELETE FROM queue_message WHERE message_id = ? AND state = 'leased' AND lease_token = ?",
            (message.message_id, token),
        )

    def nack(self, message) -> None:
        token = self._release(message)
        now = current_millis()
        conn = self.broker.conn
        conn.execute(
            "UPDATE queue_message SET state = 'dead', eta = ?, body = ? "
            "WHERE message_id = ? AND state = 'leased' AND lease_token = ?",
            (now, _encode(message), message.message_id, token),
        )
        conn.execute(
            "DELETE FROM queue_message WHERE state = 'dead' AND eta < ?", (now - DEAD_TTL_MS,)
        )

    def requeue(self, messages) -> None:
        for message in messages:
            token = self._release(message)
            self.broker.conn.execute(
                "UPDATE queue_message SET state = 'queued', leased_until = 0, lease_token = '' "
                "WHERE message_id = ? AND state = 'leased' AND lease_token = ?",
                (message.message_id, token),
            )

    def close(self) -> None:
        pass  # connections are per thread and belong to the broker
