"""Top-up tables: catalogue, purchases, auto top-up rules."""


def up(migrator, db):
    from plugins.topups.models import MODELS
    db.create_tables(MODELS)


def down(migrator, db):
    from plugins.topups.models import MODELS
    db.drop_tables(MODELS)
