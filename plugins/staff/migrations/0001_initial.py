"""Impersonations."""


def up(migrator, db):
    from plugins.staff.models import MODELS
    db.create_tables(MODELS)


def down(migrator, db):
    from plugins.staff.models import MODELS
    db.drop_tables(MODELS)
