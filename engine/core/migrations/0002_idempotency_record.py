"""``idempotency_record``: the engine's record of money-moving requests (``engine.idempotency``).

Up to Portico 0.1.0 the billing plugin's ``0001_initial`` created this table, but it belongs
to the engine, which serves every plugin's ``Idempotency-Key``. A database upgraded from 0.1.0
already has it (from billing), so this creates it only where it is missing: a new database, or
one whose billing plugin was disabled.
"""
from peewee import BooleanField, CharField, DateTimeField, IntegerField, JSONField, Model


class IdempotencyRecord(Model):
    owner = CharField(max_length=64)
    key = CharField(max_length=255)
    request = CharField(max_length=100)
    state = CharField(max_length=10)
    status = IntegerField(null=True)
    body = JSONField(null=True)
    problem = BooleanField()
    started_at = DateTimeField()
    finished_at = DateTimeField(null=True, index=True)

    class Meta:
        table_name = "idempotency_record"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("owner", "key"), True),)


TABLES = [IdempotencyRecord]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=True)  # IF NOT EXISTS, the table and its indexes


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
