"""The forecast table."""
from peewee import CharField, DateField, DateTimeField, ForeignKeyField, IntegerField, Model


class Customer(Model):  # another plugin's table, only referenced
    class Meta:
        table_name = "customer"


class Site(Model):  # another plugin's table, only referenced
    class Meta:
        table_name = "site"


class Forecast(Model):
    customer = ForeignKeyField(Customer, on_delete="CASCADE")
    site = ForeignKeyField(Site, on_delete="CASCADE")
    day = DateField()
    summary = CharField(max_length=40)
    high_c = IntegerField()
    low_c = IntegerField()
    fetched_at = DateTimeField()

    class Meta:
        table_name = "acme_weather_forecast"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("site", "day"), True),)


TABLES = [Forecast]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
