"""64-bit ``usage_event.id`` and ``ledger_entry.id`` (OPS-7, issue 16).

At a million subscribers sending 20 events a day each, a 32-bit key (2^31 - 1) runs
out in about 107 days, and every event writes one or more ledger rows. On PostgreSQL
the columns and their sequences become ``bigint``; each ALTER rewrites its table
under an exclusive lock, minutes on large tables (see CHANGELOG, upgrade steps). On
SQLite an ``INTEGER PRIMARY KEY`` is already a 64-bit rowid: nothing to do. Nothing
references these ids by foreign key (a ledger row names its event by ``event_id``).
"""
from engine.db import is_postgres

TABLES = ["usage_event", "ledger_entry"]


def key_type(db, table: str, kind: str) -> None:
    """PostgreSQL: ``table.id`` and the sequence that numbers it become ``kind``."""
    db.execute_sql(f'ALTER TABLE "{table}" ALTER COLUMN "id" TYPE {kind}')
    sequence = db.execute_sql("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()[0]
    if sequence:  # AS bigint also lifts the sequence's MAXVALUE from 2^31 - 1
        db.execute_sql(f"ALTER SEQUENCE {sequence} AS {kind}")


def up(migrator, db):
    if is_postgres():
        for table in TABLES:
            key_type(db, table, "bigint")


def down(migrator, db):
    if is_postgres():
        for table in TABLES:
            key_type(db, table, "integer")
