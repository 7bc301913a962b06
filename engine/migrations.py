"""Schema migrations: one ``migrations/`` folder per plugin, run by peewee's own runner.

Each plugin's history is kept in its own table (``migrations_<plugin>``), so
plugins number their files independently. Applied in plugin load order, which
respects ``plugin_requires``. A migration is frozen: it creates what it created
the day it was written (explicit SQL, migrator operations or frozen model
copies, never the live models), and every schema change is a new file; see
docs/plugins.md.

A run holds a lock (PostgreSQL: an advisory lock; SQLite: a lock file beside
the database), so nodes that start at once migrate one after the other: the
first applies, the others wait and then find nothing pending.
"""

from __future__ import annotations

import contextlib
import fcntl

from playhouse.migrations import Runner

from engine import db


def runners(app) -> list[tuple[str, Runner]]:
    out = []
    for name in app.plugins.enabled:
        folder = app.plugins.folder(name, "migrations")
        if folder is not None:
            table = "migrations_" + name.replace("-", "_")
            out.append((name, Runner(db.database.obj, str(folder), table_name=table)))
    return out


#: The PostgreSQL advisory lock key of a migration run (any fixed 64-bit number; "portico").
LOCK_KEY = 0x706F727469636F


def migrate(app) -> list[str]:
    """Apply every pending migration of every enabled plugin; returns "plugin:name" lines."""
    applied = []
    with one_at_a_time():
        for name, runner in runners(app):
            applied += [f"{name}:{m}" for m in runner.up()]
    return applied


@contextlib.contextmanager
def one_at_a_time():
    """Connect and hold the migration lock of the database for the block (waiting for it)."""
    if db.is_postgres():
        # A session lock, on the connection the runners use: it outlives each migration's
        # transaction, and the server drops it if this process dies.
        with db.connection():
            db.database.execute_sql("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
            try:
                yield
            finally:
                db.database.execute_sql("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        return
    path = db.database.obj.database
    if path in ("", ":memory:"):  # no other process can see it
        with db.connection():
            yield
        return
    # The lock comes before the connection: connecting switches a new file to WAL, which
    # needs the database to itself and fails with "database is locked" while another node
    # migrates. Not a transaction around the run: SQLite table rebuilds must switch foreign
    # keys off, which only works outside one. The kernel drops the lock if this process dies.
    with open(f"{path}-migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with db.connection():
            yield


def pending(app) -> list[str]:
    with db.connection():
        return [
            f"{name}:{m.name}"
            for name, runner in runners(app)
            for m in runner.status()
            if m.applied is None and m.path
        ]
