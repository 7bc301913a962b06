"""The sandbox provider's own tables."""


def up(migrator, db):
    from plugins.sandbox.models import MODELS
    db.create_tables(MODELS)


def down(migrator, db):
    from plugins.sandbox.models import MODELS
    db.drop_tables(MODELS)
