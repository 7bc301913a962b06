"""Email deliveries (``touched_at`` came with 0002)."""
from peewee import CharField, DateTimeField, IntegerField, JSONField, Model, TextField


class EmailDelivery(Model):
    key = CharField(max_length=200)
    kind = CharField(max_length=100)
    address = CharField(max_length=254)
    user_id = IntegerField(null=True)
    customer_id = IntegerField(null=True, index=True)
    locale = CharField(max_length=10)
    data = JSONField()
    status = CharField(max_length=20)
    attempts = IntegerField()
    last_error = TextField()
    created_at = DateTimeField()
    sent_at = DateTimeField(null=True)

    class Meta:
        table_name = "email_delivery"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("key", "address"), True),)


TABLES = [EmailDelivery]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
