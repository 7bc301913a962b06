"""Drop ``service_addon.request_key``: the engine's idempotency record names the add-on now.

A retry after a crash finds the add-on through ``idempotency_record.ref`` (core migration
0005). Keys still remembered there get their add-on copied in first; the column had
"<owner>:<key>", the record's owner and key joined the same way.
"""
from peewee import CharField

from engine.db import is_postgres

TABLE = "service_addon"


def columns(db, table: str) -> set[str]:
    schema = db.execute_sql("SELECT current_schema()").fetchone()[0] if is_postgres() else None
    return {c.name for c in db.get_columns(table, schema)}


def up(migrator, db):
    if "request_key" not in columns(db, TABLE):
        return
    # Records without a row stay as they are (NULL for NULL).
    db.execute_sql(
        f'UPDATE "idempotency_record" SET "ref" = ('
        f"SELECT '{TABLE}:' || t.\"id\" FROM \"{TABLE}\" t "
        f'WHERE t."request_key" = "idempotency_record"."owner" || \':\' || '
        f'"idempotency_record"."key") WHERE "ref" IS NULL')
    db.execute_sql(f'DROP INDEX IF EXISTS "{TABLE}_request_key"')
    migrator.migrate(migrator.drop_column(TABLE, "request_key"))


def down(migrator, db):
    migrator.migrate(migrator.add_column(TABLE, "request_key",
                                         CharField(max_length=330, null=True)))
    db.execute_sql(f'CREATE UNIQUE INDEX IF NOT EXISTS "{TABLE}_request_key" '
                   f'ON "{TABLE}" ("request_key")')
