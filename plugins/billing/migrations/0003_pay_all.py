"""``payment_allocation`` (BILL-8: one payment of several invoices) and
``payment.three_d_secure`` (BILL-2: the 3-D Secure outcome the provider reported)."""
from peewee import CharField, ForeignKeyField, IntegerField, Model


class Invoice(Model):  # billing's table, only referenced
    class Meta:
        table_name = "invoice"


class Payment(Model):  # billing's table, only referenced
    class Meta:
        table_name = "payment"


class PaymentAllocation(Model):
    payment = ForeignKeyField(Payment, on_delete="CASCADE")
    invoice = ForeignKeyField(Invoice, on_delete="CASCADE")
    amount = IntegerField()
    applied = IntegerField()

    class Meta:
        table_name = "payment_allocation"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("payment", "invoice"), True),)


TABLES = [PaymentAllocation]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)
    migrator.migrate(
        migrator.add_column("payment", "three_d_secure", CharField(max_length=20, default="")))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("payment", "three_d_secure"))
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
