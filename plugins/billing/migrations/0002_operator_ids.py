"""Invoices, transactions and payments pushed by the operator's billing system (INT-4).

``external_id`` (the operator's id, unique, null for rows made in Portico) on invoice,
transaction and payment; ``updated_at`` on invoice (for ``updated_since`` syncs, existing
rows count as updated when issued) and ``revision`` (a pushed invoice whose lines changed
before it was paid gets a new PDF under a new storage key).
"""
from peewee import CharField, IntegerField

from engine.db import UTCDateTimeField

EXTERNAL_ID_MAX = 100


def up(migrator, db):
    for table in ("invoice", "transaction", "payment"):
        migrator.migrate(migrator.add_column(
            table, "external_id", CharField(max_length=EXTERNAL_ID_MAX, null=True, unique=True)))
    migrator.migrate(migrator.add_column("invoice", "updated_at", UTCDateTimeField(null=True)))
    db.execute_sql('UPDATE "invoice" SET "updated_at" = "issued_at"')
    migrator.migrate(migrator.add_not_null("invoice", "updated_at"),
                     migrator.add_index("invoice", ("updated_at",), False),
                     migrator.add_column("invoice", "revision", IntegerField(default=0)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("invoice", "revision"),
                     migrator.drop_column("invoice", "updated_at"))
    for table in ("invoice", "transaction", "payment"):
        migrator.migrate(migrator.drop_column(table, "external_id"))
