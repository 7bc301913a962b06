"""``contact.can_manage``: the primary contact granted this contact "manage" (ACCT-7, engine.roles).

Numbered 0003: 0002 is the engine's ``idempotency_record``, added in the same round.
Idempotent: a database made before 0001 was frozen (when it created the models of its day)
may already have the column.
"""
from peewee import BooleanField

from engine.db import is_postgres


def columns(db, table: str) -> set[str]:
    schema = db.execute_sql("SELECT current_schema()").fetchone()[0] if is_postgres() else None
    return {c.name for c in db.get_columns(table, schema)}


def up(migrator, db):
    if "can_manage" not in columns(db, "contact"):
        migrator.migrate(migrator.add_column("contact", "can_manage", BooleanField(default=False)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("contact", "can_manage"))
