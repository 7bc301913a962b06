"""Top-up tables: catalogue, purchases, auto top-up rules."""
from peewee import (
    BigIntegerField,
    BooleanField,
    CharField,
    Check,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)


class Customer(Model):  # another plugin's table, only referenced
    class Meta:
        table_name = "customer"


class Payment(Model):  # another plugin's table, only referenced
    class Meta:
        table_name = "payment"


class Service(Model):  # another plugin's table, only referenced
    class Meta:
        table_name = "service"


class AutoTopup(Model):
    customer = ForeignKeyField(Customer, on_delete="CASCADE")
    service = ForeignKeyField(Service, unique=True, on_delete="CASCADE")
    enabled = BooleanField()
    threshold = IntegerField()
    amount = IntegerField()
    currency = CharField(max_length=3)
    disabled_reason = CharField(max_length=300)
    disabled_at = DateTimeField(null=True)
    last_run_at = DateTimeField(null=True)
    updated_at = DateTimeField()

    class Meta:
        table_name = "auto_topup"
        legacy_table_names = False  # index names start with the table's


class TopupProduct(Model):
    code = CharField(max_length=60, unique=True)
    service_type = CharField(max_length=20)
    name = CharField(max_length=100)
    description = TextField()
    currency = CharField(max_length=3)
    position = IntegerField()
    active = BooleanField()
    created_at = DateTimeField()
    updated_at = DateTimeField()
    kind = CharField(max_length=10,
                     constraints=[Check("kind in ('data', 'voice', 'sms', 'mms', 'monetary')")])
    quantity = BigIntegerField()
    price = IntegerField()
    custom = BooleanField()
    min_amount = IntegerField(null=True)
    max_amount = IntegerField(null=True)
    validity_days = IntegerField(null=True)
    weight = IntegerField()

    class Meta:
        table_name = "topup_product"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("service_type", "active", "position"), False),)


class TopupPurchase(Model):
    customer = ForeignKeyField(Customer, on_delete="CASCADE")
    service = ForeignKeyField(Service, on_delete="CASCADE")
    product = ForeignKeyField(TopupProduct, null=True, on_delete="SET NULL")
    kind = CharField(max_length=10)
    name = CharField(max_length=100)
    quantity = BigIntegerField()
    unit = CharField(max_length=10)
    price = IntegerField()
    currency = CharField(max_length=3)
    weight = IntegerField()
    validity_days = IntegerField(null=True)
    status = CharField(max_length=12,
                       constraints=[Check("status in ("
                                          "'pending', 'credited', 'failed', 'refunding', "
                                          "'refunded')")])
    payment = ForeignKeyField(Payment, null=True, unique=True, on_delete="SET NULL")
    auto = BooleanField()
    via = CharField(max_length=20)
    user_id = IntegerField(null=True)
    request_key = CharField(max_length=330, null=True, unique=True)
    bucket_ref = CharField(max_length=60)
    expires_at = DateTimeField(null=True)
    failure_message = CharField(max_length=300)
    created_at = DateTimeField()
    credited_at = DateTimeField(null=True)

    class Meta:
        table_name = "topup_purchase"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("customer", "id"), False), (("service", "id"), False))


TABLES = [AutoTopup, TopupProduct, TopupPurchase]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
