"""``staff_two_factor``: staff members' authenticators for two-step sign-in."""
from peewee import CharField, DateTimeField, ForeignKeyField, IntegerField, Model


class StaffUser(Model):  # another plugin's table, only referenced
    class Meta:
        table_name = "staff_user"


class StaffTwoFactor(Model):
    staff = ForeignKeyField(StaffUser, unique=True, on_delete="CASCADE")
    secret = CharField(max_length=200)
    confirmed_at = DateTimeField(null=True)
    last_step = IntegerField()
    created_at = DateTimeField()

    class Meta:
        table_name = "staff_two_factor"
        legacy_table_names = False  # index names start with the table's


TABLES = [StaffTwoFactor]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
