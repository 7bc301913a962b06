"""``pending_plan`` on service (SVC-3): the plan a customer's downgrade switches to at the
next renewal (a product's external id, as ``compatible_plans`` names it); null when nothing
is scheduled.
"""
from peewee import CharField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("service", "pending_plan", CharField(max_length=100, null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("service", "pending_plan"))
