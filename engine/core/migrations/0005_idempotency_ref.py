"""``idempotency_record.ref``: what a request's work created ("<table>:<id>"), for its retry.

Replaces the top-ups' and add-ons' own ``request_key`` columns (their migrations 0002 copy
those keys here, then drop them): one idempotency mechanism for every plugin.
"""
from peewee import CharField

from engine.db import is_postgres


def columns(db, table: str) -> set[str]:
    schema = db.execute_sql("SELECT current_schema()").fetchone()[0] if is_postgres() else None
    return {c.name for c in db.get_columns(table, schema)}


def up(migrator, db):
    if "ref" not in columns(db, "idempotency_record"):
        migrator.migrate(migrator.add_column("idempotency_record", "ref",
                                             CharField(max_length=100, null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("idempotency_record", "ref"))
