"""``service_token``: the operator API's service tokens (INT-1)."""
from peewee import CharField, DateTimeField, ForeignKeyField, Model


class StaffUser(Model):  # the core's table, only referenced
    class Meta:
        table_name = "staff_user"


class ServiceToken(Model):
    name = CharField(max_length=100)
    prefix = CharField(max_length=16)
    token_hash = CharField(max_length=64, unique=True)
    scopes = CharField(max_length=200)
    created_by = ForeignKeyField(StaffUser, null=True, on_delete="SET NULL")
    created_at = DateTimeField()
    expires_at = DateTimeField()
    last_used_at = DateTimeField(null=True)
    last_used_ip = CharField(max_length=64)
    revoked_at = DateTimeField(null=True)

    class Meta:
        table_name = "service_token"
        legacy_table_names = False  # index names start with the table's


TABLES = [ServiceToken]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
