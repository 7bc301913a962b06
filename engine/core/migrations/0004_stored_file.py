"""``stored_file``: the files of the database storage backend (``engine.storage``, OPS-5)."""
from peewee import BigIntegerField, BlobField, CharField, DateTimeField, Model


class StoredFile(Model):
    key = CharField(max_length=400, unique=True)
    size = BigIntegerField()
    sha256 = CharField(max_length=64)
    content_type = CharField(max_length=100)
    data = BlobField()
    created_at = DateTimeField()

    class Meta:
        table_name = "stored_file"
        legacy_table_names = False  # index names start with the table's


TABLES = [StoredFile]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
