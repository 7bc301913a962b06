"""``email_delivery.touched_at`` and its ``(status, touched_at)`` index, for the stalled-email sweep.

Existing rows count as touched when they were created. Idempotent: a database made
before 0001 was frozen (when it created the models of its day) may already have both.
"""
from engine.db import UTCDateTimeField, is_postgres

INDEX = 'CREATE INDEX IF NOT EXISTS "email_delivery_status_touched_at" ' \
        'ON "email_delivery" ("status", "touched_at")'


def columns(db, table: str) -> set[str]:
    schema = db.execute_sql("SELECT current_schema()").fetchone()[0] if is_postgres() else None
    return {c.name for c in db.get_columns(table, schema)}


def up(migrator, db):
    if "touched_at" not in columns(db, "email_delivery"):
        migrator.migrate(migrator.add_column("email_delivery", "touched_at",
                                             UTCDateTimeField(null=True)))
        db.execute_sql('UPDATE "email_delivery" SET "touched_at" = "created_at"')
        migrator.migrate(migrator.add_not_null("email_delivery", "touched_at"))
    db.execute_sql(INDEX)


def down(migrator, db):
    db.execute_sql('DROP INDEX IF EXISTS "email_delivery_status_touched_at"')
    migrator.migrate(migrator.drop_column("email_delivery", "touched_at"))
