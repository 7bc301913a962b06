"""``staff_backup_code``: staff members' one-time backup codes for two-step sign-in (SEC-5)."""
from peewee import CharField, DateTimeField, ForeignKeyField, Model


class StaffUser(Model):  # the core's table, only referenced
    class Meta:
        table_name = "staff_user"


class StaffBackupCode(Model):
    staff = ForeignKeyField(StaffUser, on_delete="CASCADE")
    code_hash = CharField(max_length=64, index=True)
    used_at = DateTimeField(null=True)
    created_at = DateTimeField()

    class Meta:
        table_name = "staff_backup_code"
        legacy_table_names = False  # index names start with the table's


TABLES = [StaffBackupCode]


def up(migrator, db):
    # safe: a database whose 0001 created the live models (before they were frozen) has it.
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=True)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=True)
