"""Impersonations."""
from peewee import CharField, DateTimeField, ForeignKeyField, Model


class Contact(Model):  # another plugin's table, only referenced
    class Meta:
        table_name = "contact"


class Customer(Model):  # another plugin's table, only referenced
    class Meta:
        table_name = "customer"


class StaffUser(Model):  # another plugin's table, only referenced
    class Meta:
        table_name = "staff_user"


class User(Model):  # another plugin's table, only referenced
    class Meta:
        table_name = "user"


class Impersonation(Model):
    staff = ForeignKeyField(StaffUser, on_delete="CASCADE")
    user = ForeignKeyField(User, on_delete="CASCADE")
    contact = ForeignKeyField(Contact, on_delete="CASCADE")
    customer = ForeignKeyField(Customer, on_delete="CASCADE")
    reason = CharField(max_length=500)
    token_hash = CharField(max_length=64, unique=True)
    created_at = DateTimeField()
    link_expires_at = DateTimeField()
    opened_at = DateTimeField(null=True)

    class Meta:
        table_name = "impersonation"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("customer", "id"), False),)


TABLES = [Impersonation]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
