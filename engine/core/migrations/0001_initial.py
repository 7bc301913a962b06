"""Core domain tables: customers, contacts, sites, users, staff, products, services, audit, outbox."""


def up(migrator, db):
    from engine.models import MODELS
    db.create_tables(MODELS)


def down(migrator, db):
    from engine.models import MODELS
    db.drop_tables(MODELS)
