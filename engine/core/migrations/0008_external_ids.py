"""``external_id`` and ``updated_at`` on customer, contact, site and service (INT-1).

The operator's own id for each row (unique; null for rows made only in Portico), and when the
row last changed, for ``updated_since`` syncs. Rows that exist already get the time of the
upgrade as their ``updated_at``. Numbered 0008: 0006 and 0007 are taken in the same round.
"""
from datetime import datetime, timezone

from peewee import CharField, DateTimeField

TABLES = ("customer", "contact", "site", "service")


def now():
    return datetime.now(timezone.utc).replace(tzinfo=None)


def up(migrator, db):
    for table in TABLES:
        migrator.migrate(
            migrator.add_column(table, "external_id",
                                CharField(max_length=100, null=True, unique=True)),
            migrator.add_column(table, "updated_at", DateTimeField(default=now, index=True)))


def down(migrator, db):
    for table in TABLES:
        migrator.migrate(migrator.drop_index(table, f"{table}_external_id"),
                         migrator.drop_index(table, f"{table}_updated_at"),
                         migrator.drop_column(table, "external_id"),
                         migrator.drop_column(table, "updated_at"))
