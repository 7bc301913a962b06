"""``session.contact_id`` (SUP-2): the customer account a session acts for, when it is not the
login's own (a ``linked_contact``); null for the login's own contact. A contact removed sends
its sessions back to the login's own account."""

from peewee import ForeignKeyField, Model


class Contact(Model):  # the core's table, only referenced
    class Meta:
        table_name = "contact"


def up(migrator, db):
    migrator.migrate(
        migrator.add_column(
            "session",
            "contact_id",
            ForeignKeyField(Contact, null=True, on_delete="SET NULL", field=Contact.id),
        )
    )


def down(migrator, db):
    migrator.migrate(migrator.drop_column("session", "contact_id"))
