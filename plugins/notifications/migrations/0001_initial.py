"""Notification preferences and digest items."""
from peewee import CharField, DateTimeField, ForeignKeyField, JSONField, Model


class User(Model):  # another plugin's table, only referenced
    class Meta:
        table_name = "user"


class DigestItem(Model):
    user = ForeignKeyField(User, on_delete="CASCADE")
    key = CharField(max_length=200)
    kind = CharField(max_length=100)
    category = CharField(max_length=20)
    data = JSONField()
    created_at = DateTimeField()
    digest_key = CharField(max_length=100, null=True, index=True)
    channel = CharField(max_length=20)

    class Meta:
        table_name = "digest_item"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("user", "key", "channel"), True),)


class NotificationPreference(Model):
    user = ForeignKeyField(User, unique=True, on_delete="CASCADE")
    frequency = CharField(max_length=10)
    channels = JSONField()
    thresholds = JSONField()
    updated_at = DateTimeField()

    class Meta:
        table_name = "notification_preference"
        legacy_table_names = False  # index names start with the table's


TABLES = [DigestItem, NotificationPreference]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
