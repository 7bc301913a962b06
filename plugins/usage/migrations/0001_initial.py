"""Usage tables: buckets, their ledger, and rated usage events."""


def up(migrator, db):
    from plugins.usage.models import MODELS
    db.create_tables(MODELS)


def down(migrator, db):
    from plugins.usage.models import MODELS
    db.drop_tables(MODELS)
