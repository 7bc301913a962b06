"""``external_id`` on addon_product (INT-1, issue 17).

The operator's own id for an add-on catalogue entry its systems keep through the operator API
(unique; null for entries staff made in Portico), and ``updated_since`` syncs by
``updated_at``, which the table already had (a catalogue is small: no index).
"""
from peewee import CharField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("addon_product", "external_id",
                            CharField(max_length=100, null=True, unique=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_index("addon_product", "addon_product_external_id"),
                     migrator.drop_column("addon_product", "external_id"))
