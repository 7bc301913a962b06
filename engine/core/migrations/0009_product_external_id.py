"""``external_id``, ``updated_at`` and ``compatible_plans`` on product (INT-1, issue 17).

The operator's own id for a plan (unique; null for products made only in Portico), when it
last changed (``updated_since`` syncs), and the plans a service on it may switch to (a JSON
list of the other products' external ids). Existing products get the time of the upgrade
as their ``updated_at`` and no compatible plans.
"""
from datetime import datetime, timezone

from peewee import CharField, DateTimeField, JSONField


def now():
    return datetime.now(timezone.utc).replace(tzinfo=None)


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("product", "external_id",
                            CharField(max_length=100, null=True, unique=True)),
        migrator.add_column("product", "updated_at", DateTimeField(default=now, index=True)),
        migrator.add_column("product", "compatible_plans", JSONField(null=True)))
    db.execute_sql("UPDATE \"product\" SET \"compatible_plans\" = '[]'")
    migrator.migrate(migrator.add_not_null("product", "compatible_plans"))


def down(migrator, db):
    migrator.migrate(migrator.drop_index("product", "product_external_id"),
                     migrator.drop_index("product", "product_updated_at"),
                     migrator.drop_column("product", "external_id"),
                     migrator.drop_column("product", "updated_at"),
                     migrator.drop_column("product", "compatible_plans"))
