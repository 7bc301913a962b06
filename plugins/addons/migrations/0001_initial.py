"""Add-on tables: catalogue and the add-ons of services."""


def up(migrator, db):
    from plugins.addons.models import MODELS
    db.create_tables(MODELS)


def down(migrator, db):
    from plugins.addons.models import MODELS
    db.drop_tables(MODELS)
