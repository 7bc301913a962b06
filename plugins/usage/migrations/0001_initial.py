"""Usage tables: buckets, their ledger, and rated usage events."""
from peewee import (
    BigIntegerField,
    BooleanField,
    CharField,
    Check,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
)


class Service(Model):  # another plugin's table, only referenced
    class Meta:
        table_name = "service"


class Bucket(Model):
    service = ForeignKeyField(Service, on_delete="CASCADE")
    type = CharField(max_length=10)
    scope = CharField(max_length=15)
    name = CharField(max_length=100)
    source = CharField(max_length=15)
    weight = IntegerField()
    initial = BigIntegerField()
    remaining = BigIntegerField(constraints=[Check("remaining >= 0")])
    unit = CharField(max_length=10)
    renewable = BooleanField()
    expires_at = DateTimeField(null=True)
    created_at = DateTimeField()
    reference = CharField(max_length=100)

    class Meta:
        table_name = "bucket"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("service", "type"), False),)


class LedgerEntry(Model):
    bucket = ForeignKeyField(Bucket, on_delete="CASCADE")  # its index went in 0002
    kind = CharField(max_length=15)
    delta = BigIntegerField()
    reference = CharField(max_length=100)
    created_at = DateTimeField()

    class Meta:
        table_name = "ledger_entry"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("bucket", "id"), False),)


class UsageEvent(Model):
    event_id = CharField(max_length=100, unique=True)
    service = ForeignKeyField(Service, on_delete="CASCADE")  # its index went in 0002
    type = CharField(max_length=10)
    quantity = BigIntegerField()
    occurred_at = DateTimeField()
    destination = CharField(max_length=15)
    international = BooleanField()
    counterparty = CharField(max_length=40)
    covered = BigIntegerField()
    charged = BigIntegerField()
    overage = BigIntegerField()
    rated_at = DateTimeField()

    class Meta:
        table_name = "usage_event"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("service", "occurred_at"), False),)  # (service, type, id) came with 0002


TABLES = [Bucket, LedgerEntry, UsageEvent]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
