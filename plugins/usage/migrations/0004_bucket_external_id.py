"""``external_id`` and ``updated_at`` on bucket (INT-1, issue 17): buckets the operator's
systems grant through the operator API carry the operator's id for them (unique; null for
buckets made in Portico), and when the operator or staff last changed them."""
from datetime import datetime, timezone

from peewee import CharField, DateTimeField


def now():
    return datetime.now(timezone.utc).replace(tzinfo=None)


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("bucket", "external_id",
                            CharField(max_length=100, null=True, unique=True)),
        migrator.add_column("bucket", "updated_at", DateTimeField(default=now, index=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_index("bucket", "bucket_external_id"),
                     migrator.drop_index("bucket", "bucket_updated_at"),
                     migrator.drop_column("bucket", "external_id"),
                     migrator.drop_column("bucket", "updated_at"))
