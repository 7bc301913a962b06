"""Push subscriptions and deliveries."""
from peewee import CharField, DateTimeField, ForeignKeyField, Model, TextField


class User(Model):  # another plugin's table, only referenced
    class Meta:
        table_name = "user"


class PushSubscription(Model):
    user = ForeignKeyField(User, on_delete="CASCADE")
    endpoint = CharField(max_length=1000, unique=True)
    p256dh = CharField(max_length=200)
    auth = CharField(max_length=100)
    user_agent = CharField(max_length=300)
    created_at = DateTimeField()
    last_used_at = DateTimeField(null=True)

    class Meta:
        table_name = "push_subscription"
        legacy_table_names = False  # index names start with the table's


class PushDelivery(Model):
    key = CharField(max_length=200)
    subscription = ForeignKeyField(PushSubscription, on_delete="CASCADE")
    title = CharField(max_length=200)
    body = TextField()
    url = CharField(max_length=500)
    status = CharField(max_length=20)
    created_at = DateTimeField()
    sent_at = DateTimeField(null=True)

    class Meta:
        table_name = "push_delivery"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("key", "subscription"), True),)


TABLES = [PushSubscription, PushDelivery]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
