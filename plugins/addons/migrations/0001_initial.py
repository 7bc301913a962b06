"""Add-on tables: catalogue and the add-ons of services."""
from peewee import (
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


class AddonProduct(Model):
    code = CharField(max_length=60, unique=True)
    service_type = CharField(max_length=20)
    name = CharField(max_length=100)
    description = TextField()
    currency = CharField(max_length=3)
    position = IntegerField()
    active = BooleanField()
    created_at = DateTimeField()
    updated_at = DateTimeField()
    category = CharField(max_length=20,
                         constraints=[Check("category in ("
                                            "'roaming', 'static_ip', 'premium_content', "
                                            "'hardware', 'speed_boost')")])
    one_off_price = IntegerField()
    recurring_price = IntegerField()
    period_days = IntegerField()
    provisioner = CharField(max_length=60)
    removable = BooleanField()

    class Meta:
        table_name = "addon_product"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("service_type", "active", "position"), False),)


class ServiceAddon(Model):
    customer = ForeignKeyField(Customer, on_delete="CASCADE")
    service = ForeignKeyField(Service, on_delete="CASCADE")
    product = ForeignKeyField(AddonProduct, null=True, on_delete="SET NULL")
    name = CharField(max_length=100)
    category = CharField(max_length=20)
    one_off_price = IntegerField()
    recurring_price = IntegerField()
    currency = CharField(max_length=3)
    period_days = IntegerField()
    provisioner = CharField(max_length=60)
    removable = BooleanField()
    status = CharField(max_length=20,
                       constraints=[Check("status in ("
                                          "'awaiting_payment', 'pending', 'active', 'failed', "
                                          "'canceled', 'removing', 'removed')")])
    payment = ForeignKeyField(Payment, null=True, unique=True, on_delete="SET NULL")
    reference = CharField(max_length=100, null=True)
    detail = CharField(max_length=200)
    failure_message = CharField(max_length=300)
    attempts = IntegerField()
    via = CharField(max_length=20)
    user_id = IntegerField(null=True)
    request_key = CharField(max_length=330, null=True, unique=True)
    created_at = DateTimeField()
    activated_at = DateTimeField(null=True)
    removed_at = DateTimeField(null=True)
    next_charge_at = DateTimeField(null=True)
    charged_periods = IntegerField()

    class Meta:
        table_name = "service_addon"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("customer", "id"), False), (("service", "id"), False),
                   (("provisioner", "reference"), True), (("status", "next_charge_at"), False))


TABLES = [AddonProduct, ServiceAddon]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
