"""The job runs table."""
from peewee import CharField, DateTimeField, IntegerField, Model


class JobRun(Model):
    name = CharField(max_length=50)
    arg = CharField(max_length=200)
    message_id = CharField(max_length=36)
    scheduled_at = CharField(max_length=50)
    pid = IntegerField()
    created_at = DateTimeField()

    class Meta:
        table_name = "job_run"
        legacy_table_names = False  # index names start with the table's


TABLES = [JobRun]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
