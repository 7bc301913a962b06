"""``outbox_message.done_at`` and ``redeliver_at`` (OPS-6): the outbox keeps each message until
a worker has finished it, and a sweep sends again the ones the broker lost.

Rows already sent before this migration count as done (as they did before), so an upgrade
sends nothing twice.
"""
from peewee import DateTimeField

from engine.db import is_postgres


def columns(db, table: str) -> set[str]:
    schema = db.execute_sql("SELECT current_schema()").fetchone()[0] if is_postgres() else None
    return {c.name for c in db.get_columns(table, schema)}


def up(migrator, db):
    have = columns(db, "outbox_message")
    for name in ("done_at", "redeliver_at"):
        if name not in have:
            migrator.migrate(migrator.add_column("outbox_message", name,
                                                 DateTimeField(null=True, index=True)))
    db.execute_sql("UPDATE outbox_message SET done_at = sent_at "
                   "WHERE sent_at IS NOT NULL AND done_at IS NULL")


def down(migrator, db):
    migrator.migrate(migrator.drop_column("outbox_message", "redeliver_at"),
                     migrator.drop_column("outbox_message", "done_at"))
