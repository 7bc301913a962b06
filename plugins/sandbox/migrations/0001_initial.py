"""The sandbox provider's own tables."""
from peewee import BooleanField, CharField, DateTimeField, IntegerField, JSONField, Model


class SandboxCard(Model):
    ref = CharField(max_length=40, unique=True)
    customer_ref = CharField(max_length=40, index=True)
    kind = CharField(max_length=20)
    brand = CharField(max_length=20)
    last4 = CharField(max_length=4)
    exp_month = IntegerField()
    exp_year = IntegerField()
    detached = BooleanField()
    created_at = DateTimeField()

    class Meta:
        table_name = "sandbox_card"
        legacy_table_names = False  # index names start with the table's


class SandboxCharge(Model):
    ref = CharField(max_length=40, unique=True)
    idempotency_key = CharField(max_length=120, unique=True)
    customer_ref = CharField(max_length=40)
    card_ref = CharField(max_length=40)
    amount = IntegerField()
    currency = CharField(max_length=3)
    status = CharField(max_length=30)
    client_secret = CharField(max_length=80)
    off_session = BooleanField()
    failure_code = CharField(max_length=60)
    failure_message = CharField(max_length=200)
    refunded = IntegerField()
    metadata = JSONField()
    created_at = DateTimeField()

    class Meta:
        table_name = "sandbox_charge"
        legacy_table_names = False  # index names start with the table's


class SandboxCustomer(Model):
    ref = CharField(max_length=40, unique=True)
    email = CharField(max_length=254)
    created_at = DateTimeField()

    class Meta:
        table_name = "sandbox_customer"
        legacy_table_names = False  # index names start with the table's


class SandboxRefund(Model):
    ref = CharField(max_length=40, unique=True)
    idempotency_key = CharField(max_length=120, unique=True)
    charge_ref = CharField(max_length=40, index=True)
    amount = IntegerField()
    created_at = DateTimeField()

    class Meta:
        table_name = "sandbox_refund"
        legacy_table_names = False  # index names start with the table's


class SandboxSetup(Model):
    ref = CharField(max_length=40, unique=True)
    customer_ref = CharField(max_length=40, index=True)
    status = CharField(max_length=30)
    card_ref = CharField(max_length=40)
    created_at = DateTimeField()

    class Meta:
        table_name = "sandbox_setup"
        legacy_table_names = False  # index names start with the table's


TABLES = [SandboxCard, SandboxCharge, SandboxCustomer, SandboxRefund, SandboxSetup]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
