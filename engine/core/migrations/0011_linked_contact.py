"""``linked_contact`` (SUP-2): the further customer accounts a login speaks for, one contact
each; a contact has at most one login (``unique``)."""

from peewee import DateTimeField, ForeignKeyField, Model


class User(Model):  # the table of 0001, only referenced
    class Meta:
        table_name = "user"


class Contact(Model):  # the table of 0001, only referenced
    class Meta:
        table_name = "contact"


class LinkedContact(Model):
    user = ForeignKeyField(User, on_delete="CASCADE")
    contact = ForeignKeyField(Contact, unique=True, on_delete="CASCADE")
    created_at = DateTimeField()

    class Meta:
        table_name = "linked_contact"
        legacy_table_names = False  # index names start with the table's


TABLES = [LinkedContact]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
