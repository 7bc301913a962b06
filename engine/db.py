"""The database: one peewee proxy, opened from a URL, and the helpers every plugin uses.

SQLite is the embedded default (WAL, foreign keys, busy timeout); PostgreSQL is
the production database. Connections come from a pool and are taken per
request by the app's middleware.
"""

from __future__ import annotations

import contextlib
import io
import json
import itertools
import logging
import re
import time
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlparse

import peewee
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase
from psycopg2.extensions import TRANSACTION_STATUS_IDLE

database = peewee.DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 10000,
    "synchronous": "normal",
    "cache_size": -16000,
}


class PostgresPool(PooledPostgresqlDatabase):
    """peewee's pool, without the ``SELECT 1`` round trip for a connection just handed back.

    The stock pool pings every connection it hands out. Each request checks one out,
    so that doubled the cost of a request's shortest lookups. A connection returned
    less than ``PING_AFTER`` seconds ago, idle and not closed by the driver, is
    handed out as it is; older ones are still pinged.
    """

    PING_AFTER = 2.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._returned_at: dict[int, float] = {}

    # peewee's pool has no public hook for this: `_can_reuse` (check-in) and `_is_closed`
    # (check-out) are the methods its own pooled classes override. Checked against peewee
    # 4.5.3 (playhouse/pool.py); the connection itself is read through psycopg2's public API.
    def _can_reuse(self, conn):
        reusable = super()._can_reuse(conn)
        if reusable:
            self._returned_at[id(conn)] = time.monotonic()
        return reusable

    def _is_closed(self, conn):
        returned = self._returned_at.pop(id(conn), None)
        if (
            returned is not None
            and time.monotonic() - returned < self.PING_AFTER
            and not conn.closed
            and conn.get_transaction_status() == TRANSACTION_STATUS_IDLE
        ):
            return False
        return super()._is_closed(conn)


def open_database(url: str) -> peewee.Database:
    """Open a pooled database from ``sqlite:///path`` or ``postgresql://...``."""
    parts = urlparse(url)
    if parts.scheme == "sqlite":
        path = parts.path if parts.netloc in ("", "localhost") else parts.netloc + parts.path
        if path not in (":memory:", "/:memory:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = PooledSqliteDatabase(
            path,
            pragmas=SQLITE_PRAGMAS,
            max_connections=32,
            stale_timeout=300,
            check_same_thread=False,
            timeout=10,
        )
    elif parts.scheme in ("postgres", "postgresql"):
        options: dict[str, Any] = dict(parse_qsl(parts.query))
        options.setdefault("connect_timeout", 5)  # an unreachable host fails, not hangs (OPS-3)
        # ?prepare=false: no server-side PREPARE (``Prepared``), for PgBouncer in transaction
        # mode, where a connection's next statement may run on another server session.
        prepare = options.pop("prepare", "true").lower() not in ("false", "0", "no", "off")
        # libpq reads user and password from the query too (?user=..&password=..)
        db = PostgresPool(
            parts.path.lstrip("/"),
            user=options.pop("user", parts.username),
            password=options.pop("password", parts.password),
            host=options.pop("host", parts.hostname or "127.0.0.1"),
            port=options.pop("port", parts.port or 5432),
            max_connections=int(options.pop("max_connections", 20)),
            stale_timeout=300,
            **options,
        )
        db.server_prepare = prepare
    else:
        raise ValueError(
            f"database_url: unsupported scheme '{parts.scheme}' "
            "(use sqlite:///path or postgresql://user@host/db)"
        )
    return db


def bind(db: peewee.Database) -> None:
    """Point the shared proxy at ``db``."""
    database.initialize(db)


def is_postgres() -> bool:
    return isinstance(database.obj, peewee.PostgresqlDatabase)


def locked_transaction() -> Any:
    """A transaction that holds a write lock from its first statement.

    On SQLite ``BEGIN IMMEDIATE`` takes the write lock up front: a deferred
    transaction that reads then writes can fail the lock upgrade under load.
    On PostgreSQL use ``for_update()`` on the rows you change (see ``lock_rows``).
    """
    if is_postgres():
        return database.atomic()
    if database.in_transaction():
        return database.atomic()
    return database.atomic("IMMEDIATE")


def lock_rows(query: peewee.Select) -> peewee.Select:
    """``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the transaction already holds the lock."""
    return query.for_update() if is_postgres() else query


@contextlib.contextmanager
def connection():
    """Hold a pooled connection for the block (used by workers and commands)."""
    opened = database.connect(reuse_if_open=True)
    try:
        yield
    finally:
        if opened and not database.is_closed():
            database.close()


def copy_rows(table: str, columns: list[str], rows) -> None:
    """PostgreSQL ``COPY table (columns) FROM STDIN`` of plain rows, on the current connection.

    For bulk writes on hot paths: several times faster than a multi-row INSERT, whose
    thousands of parameters psycopg2 quotes one by one and the server then parses.
    Values: None, bool, int, str, and naive datetimes (already in UTC).
    """

    def text(value) -> str:
        if type(value) is int:  # most values: ids and quantities
            return str(value)
        if value is None:
            return "\\N"
        if isinstance(value, bool):
            return "t" if value else "f"
        if isinstance(value, datetime):
            return value.isoformat()
        return copy_escape(str(value))

    copy_text(table, columns, "".join("\t".join(map(text, row)) + "\n" for row in rows))


def copy_escape(text: str) -> str:
    """``text`` for COPY's text format: backslash, tab and line ends escaped."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


def copy_text(table: str, columns: list[str], body: str) -> None:
    """``COPY`` a body already in COPY's text format (a hot path may build it faster by
    knowing its columns' types), logged where peewee logs its statements so tests that
    count statements (``engine.testing.sql_seen``) see it."""
    names = ", ".join(f'"{c}"' for c in columns)
    sql = f'COPY "{table}" ({names}) FROM STDIN'
    logging.getLogger("peewee").debug((sql, None))
    database.cursor().copy_expert(sql, io.StringIO(body))


def insert_rows(model, rows: list[dict]) -> list[int]:
    """Insert ``rows`` (each a model instance's ``__data__``) and return
    their ids in order.

    On PostgreSQL two statements whatever the number of rows: the ids taken from the table's
    sequence, then the rows with those ids by ``COPY`` (``copy_rows``). A multi-row INSERT
    was slower on both sides: psycopg2 quotes its thousands of parameters one by one and
    the server parses them (peewee's own ``insert_many`` spends longer still composing it).
    On SQLite one INSERT a row: its peewee driver has no RETURNING, and its statements cost
    no round trip.
    """
    if not rows:
        return []
    if not is_postgres():
        return [model.insert(**row).execute() for row in rows]
    meta = model._meta
    key = meta.primary_key
    # The fields any row sets (one left unset, with no default, is NULL as in ``create``).
    columns = [meta.fields[name] for name in dict.fromkeys(k for row in rows for k in row)]
    columns = [f for f in columns if f is not key]
    ids = [
        r[0]
        for r in database.execute_sql(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            (meta.table_name, key.column_name, len(rows)),
        )
    ]
    values = (
        (new_id, *(_copy_value(f, row.get(f.name)) for f in columns))
        for new_id, row in zip(ids, rows)
    )
    with peewee.__exception_wrapper__:  # psycopg2's errors as peewee's, as its own execute does
        copy_rows(meta.table_name, [key.column_name, *(f.column_name for f in columns)], values)
    return ids


def _copy_value(field, value):
    """A field's value as ``copy_rows`` takes it: JSON as its text, the rest as stored."""
    if isinstance(field, peewee.JSONField):
        return None if value is None else getattr(field, "_dumps", json.dumps)(value)
    return field.db_value(value)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC. Tests move it with time-machine."""
    return datetime.now(timezone.utc)


class _Column:
    """For the type checker only: a field on a model reads and takes plain values.

    (peewee is checked as untyped, so without this every field would have its own class
    as its type.)
    """

    if TYPE_CHECKING:

        def __get__(self, obj: Any, owner: Any) -> Any: ...
        def __set__(self, obj: Any, value: Any) -> None: ...


class UTCDateTimeField(_Column, peewee.DateTimeField):
    """Stores UTC without a zone (both databases alike); reads back timezone-aware UTC."""

    def db_value(self, value):
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return super().db_value(value)

    def python_value(self, value):
        value = super().python_value(value)
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class CurrencyField(_Column, peewee.CharField):
    """An ISO 4217 currency code, upper case."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 3)
        super().__init__(**kwargs)

    def db_value(self, value):
        return value.upper() if isinstance(value, str) else value


class BaseModel(peewee.Model):
    """Base for every Portico table: bound to the shared proxy."""

    class Meta:
        database = database
        legacy_table_names = False


class Prepared:
    """A fixed-shape select for hot paths, compiled to SQL once per process and database.

    ``build(*values)`` returns the peewee query. The first call compiles it with
    stand-in values; later calls run that SQL text with the real values and turn
    the rows into model instances (joined models included) through the query's own
    row wrapper. Every request authenticates, and peewee spends longer building a
    lookup's SQL than the database spends answering it. Values must be ints or
    strings (they are matched to their placeholders by value).
    """

    _names = itertools.count(1)

    def __init__(self, build):
        self.build = build
        self._compiled: dict[type, tuple] = {}  # per dialect: the SQL text depends on nothing else
        # PostgreSQL plans every statement it is sent (about 1 ms for the session lookup, more
        # than running it); a server-side PREPARE per connection plans it once.
        self.name = f"portico_prepared_{next(self._names)}"
        self._prepared_on: weakref.WeakSet = weakref.WeakSet()  # the connections that have it

    def _compile(self, db: peewee.Database, values: tuple) -> tuple:
        stand_ins = [
            -(10**15) - i if isinstance(v, int) else f"\0prepared-{i}" for i, v in enumerate(values)
        ]
        query = self.build(*stand_ins)
        sql, params = query.bind(db).sql()
        slots = [stand_ins.index(p) if p in stand_ins else None for p in params]
        return query, sql, params, slots

    def rows(self, *values) -> list:
        db = database.obj
        found = self._compiled.get(type(db))
        if found is None:
            found = self._compiled[type(db)] = self._compile(db, values)
        query, sql, params, slots = found
        args = [p if s is None else values[s] for p, s in zip(params, slots)]
        if isinstance(db, peewee.PostgresqlDatabase) and getattr(db, "server_prepare", True):
            cursor = self._execute_prepared(db, sql, args)
        else:
            cursor = db.execute_sql(sql, args)
        return _model_rows(query, cursor)

    def _execute_prepared(self, db: peewee.Database, sql: str, args: list):
        conn = db.connection()
        if conn not in self._prepared_on:
            numbered = itertools.count(1)
            db.execute_sql(
                f"PREPARE {self.name} AS " + re.sub(r"%s", lambda _: f"${next(numbered)}", sql)
            )
            self._prepared_on.add(conn)
        return db.execute_sql(f"EXECUTE {self.name}({', '.join(['%s'] * len(args))})", args)

    def first(self, *values):
        rows = self.rows(*values)
        return rows[0] if rows else None


def _model_rows(query: peewee.BaseQuery, cursor: Any) -> list:
    """``cursor``'s rows as ``query`` itself turns them into model instances (joined models too).

    peewee has no public API for this: a query builds its row wrapper in the private
    ``_get_cursor_wrapper`` (checked against peewee 4.5.3). Kept here, in one place.
    """
    return list(query._get_cursor_wrapper(cursor))
