"""Billing tables, and the engine's idempotency records (every money-moving plugin needs billing)."""


def up(migrator, db):
    from engine.idempotency import IdempotencyRecord
    from plugins.billing.models import MODELS
    db.create_tables([*MODELS, IdempotencyRecord])


def down(migrator, db):
    from engine.idempotency import IdempotencyRecord
    from plugins.billing.models import MODELS
    db.drop_tables([*MODELS, IdempotencyRecord])
