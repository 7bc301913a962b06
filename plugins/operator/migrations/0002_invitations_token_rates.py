"""``invitation`` (INT-2) and ``service_token.rate_per_minute`` (a token's own rate limit)."""
from peewee import CharField, DateTimeField, ForeignKeyField, IntegerField, Model


class Contact(Model):  # the core's table, only referenced
    class Meta:
        table_name = "contact"


class Invitation(Model):
    contact = ForeignKeyField(Contact, on_delete="CASCADE")
    token_hash = CharField(max_length=64, unique=True)
    email = CharField(max_length=254)
    created_at = DateTimeField()
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)
    revoked_at = DateTimeField(null=True)

    class Meta:
        table_name = "invitation"
        legacy_table_names = False  # index names start with the table's


TABLES = [Invitation]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)
    migrator.migrate(migrator.add_column("service_token", "rate_per_minute", IntegerField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("service_token", "rate_per_minute"))
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
