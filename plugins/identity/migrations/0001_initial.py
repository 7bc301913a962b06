"""Identity tables: sessions, devices, login guards, reset links, 2FA, API keys, rate counters."""


def up(migrator, db):
    from plugins.identity.models import MODELS
    db.create_tables(MODELS)


def down(migrator, db):
    from plugins.identity.models import MODELS
    db.drop_tables(MODELS)
