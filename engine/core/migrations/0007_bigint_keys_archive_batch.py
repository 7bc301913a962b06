"""64-bit ``audit_event.id`` and the ``archive_batch`` table (OPS-7, issue 16).

Every change writes an audit event: at a million subscribers a 32-bit key runs out
within a few years, usage-heavy deployments sooner. On PostgreSQL the column and its
sequence become ``bigint``; the ALTER rewrites the table under an exclusive lock (see
CHANGELOG, upgrade steps). On SQLite an ``INTEGER PRIMARY KEY`` is already a 64-bit
rowid, so there is nothing to do.

``archive_batch`` records each archive file of ``engine.retention`` before its rows
are deleted, so an interrupted run resumes.
"""
from peewee import BigIntegerField, CharField, DateTimeField, IntegerField, Model

from engine.db import is_postgres

WIDEN = ["audit_event"]


class ArchiveBatch(Model):
    name = CharField(max_length=100)
    key = CharField(max_length=400, unique=True)
    first_id = BigIntegerField()
    last_id = BigIntegerField()
    rows = IntegerField()
    state = CharField(max_length=10)
    created_at = DateTimeField()
    finished_at = DateTimeField(null=True)

    class Meta:
        table_name = "archive_batch"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("name", "state"), False),)


TABLES = [ArchiveBatch]


def key_type(db, table: str, kind: str) -> None:
    """PostgreSQL: ``table.id`` and the sequence that numbers it become ``kind``."""
    db.execute_sql(f'ALTER TABLE "{table}" ALTER COLUMN "id" TYPE {kind}')
    sequence = db.execute_sql("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()[0]
    if sequence:  # AS bigint also lifts the sequence's MAXVALUE from 2^31 - 1
        db.execute_sql(f"ALTER SEQUENCE {sequence} AS {kind}")


def up(migrator, db):
    if is_postgres():
        for table in WIDEN:
            key_type(db, table, "bigint")
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
    if is_postgres():
        for table in WIDEN:
            key_type(db, table, "integer")
