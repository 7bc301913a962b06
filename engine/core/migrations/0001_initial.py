"""Core domain tables: customers, contacts, sites, users, staff, products, services, audit and
outbox."""
from peewee import (
    BooleanField,
    CharField,
    Check,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    Model,
    TextField,
)


class Customer(Model):
    number = CharField(max_length=20, unique=True)
    name = CharField(max_length=200)
    kind = CharField(max_length=20, constraints=[Check("kind in ('individual', 'business')")])
    api_access = BooleanField()
    created_at = DateTimeField()

    class Meta:
        table_name = "customer"
        legacy_table_names = False  # index names start with the table's


class Contact(Model):
    customer = ForeignKeyField(Customer, on_delete="CASCADE")
    first_name = CharField(max_length=100)
    last_name = CharField(max_length=100)
    email = CharField(max_length=254)
    phone = CharField(max_length=32)
    role = CharField(max_length=50)
    is_primary = BooleanField()
    created_at = DateTimeField()

    class Meta:
        table_name = "contact"
        legacy_table_names = False  # index names start with the table's


class User(Model):
    contact = ForeignKeyField(Contact, unique=True, on_delete="CASCADE")
    email = CharField(max_length=254, unique=True)
    password_hash = CharField(max_length=255)
    locale = CharField(max_length=10)
    timezone = CharField(max_length=64)
    is_active = BooleanField()
    email_verified_at = DateTimeField(null=True)
    password_changed_at = DateTimeField()
    created_at = DateTimeField()

    class Meta:
        table_name = "user"
        legacy_table_names = False  # index names start with the table's


class StaffUser(Model):
    email = CharField(max_length=254, unique=True)
    name = CharField(max_length=200)
    password_hash = CharField(max_length=255)
    permissions = CharField(max_length=500)
    is_active = BooleanField()
    created_at = DateTimeField()

    class Meta:
        table_name = "staff_user"
        legacy_table_names = False  # index names start with the table's


class AuditEvent(Model):
    customer = ForeignKeyField(Customer, null=True, on_delete="CASCADE")
    user = ForeignKeyField(User, null=True, on_delete="SET NULL")
    staff = ForeignKeyField(StaffUser, null=True, on_delete="SET NULL")
    impersonated = BooleanField()
    action = CharField(max_length=100)
    target = CharField(max_length=200)
    data = JSONField()
    ip = CharField(max_length=64)
    user_agent = CharField(max_length=300)
    created_at = DateTimeField(index=True)

    class Meta:
        table_name = "audit_event"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("customer", "id"), False),)


class OutboxMessage(Model):
    message_id = CharField(max_length=36, unique=True)
    actor = CharField(max_length=200)
    queue = CharField(max_length=100)
    payload = JSONField()
    delay_ms = IntegerField()
    created_at = DateTimeField()
    sent_at = DateTimeField(null=True, index=True)
    attempts = IntegerField()
    last_error = TextField()

    class Meta:
        table_name = "outbox_message"
        legacy_table_names = False  # index names start with the table's


class Product(Model):
    code = CharField(max_length=50, unique=True)
    name = CharField(max_length=200)
    service_type = CharField(max_length=20)
    monthly_fee = IntegerField()
    currency = CharField(max_length=3)
    period_days = IntegerField()
    allow_cancel = BooleanField()
    allow_modify = BooleanField()
    description = TextField()

    class Meta:
        table_name = "product"
        legacy_table_names = False  # index names start with the table's


class Site(Model):
    customer = ForeignKeyField(Customer, on_delete="CASCADE")
    label = CharField(max_length=100)
    line1 = CharField(max_length=200)
    line2 = CharField(max_length=200)
    city = CharField(max_length=100)
    postcode = CharField(max_length=20)
    country = CharField(max_length=2)

    class Meta:
        table_name = "site"
        legacy_table_names = False  # index names start with the table's


class Service(Model):
    customer = ForeignKeyField(Customer, on_delete="CASCADE")
    product = ForeignKeyField(Product)
    site = ForeignKeyField(Site, null=True, on_delete="SET NULL")
    service_type = CharField(max_length=20)
    name = CharField(max_length=200)
    identifier = CharField(max_length=100)
    status = CharField(max_length=20)
    suspended_reason = CharField(max_length=200)
    created_at = DateTimeField()
    period_start = DateTimeField()
    renews_at = DateTimeField(null=True)
    expires_at = DateTimeField(null=True)
    monthly_fee = IntegerField()
    currency = CharField(max_length=3)
    auto_renew = BooleanField()
    esim_activation_code = CharField(max_length=255)

    class Meta:
        table_name = "service"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("customer", "id"), False),)


TABLES = [Customer, Contact, User, StaffUser, AuditEvent, OutboxMessage, Product, Site, Service]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
