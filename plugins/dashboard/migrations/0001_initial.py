"""Alert dismissals."""
from peewee import CharField, DateTimeField, ForeignKeyField, Model


class User(Model):  # another plugin's table, only referenced
    class Meta:
        table_name = "user"


class AlertDismissal(Model):
    user = ForeignKeyField(User, on_delete="CASCADE")
    alert_id = CharField(max_length=200)
    dismissed_at = DateTimeField()

    class Meta:
        table_name = "alert_dismissal"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("user", "alert_id"), True),)


TABLES = [AlertDismissal]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
