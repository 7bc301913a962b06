"""Pending email changes."""
from peewee import CharField, DateTimeField, ForeignKeyField, Model


class User(Model):  # another plugin's table, only referenced
    class Meta:
        table_name = "user"


class EmailChange(Model):
    user = ForeignKeyField(User, on_delete="CASCADE")
    old_email = CharField(max_length=254)
    new_email = CharField(max_length=254)
    token_hash = CharField(max_length=64, unique=True)
    created_at = DateTimeField()
    used_at = DateTimeField(null=True)

    class Meta:
        table_name = "email_change"
        legacy_table_names = False  # index names start with the table's


TABLES = [EmailChange]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
