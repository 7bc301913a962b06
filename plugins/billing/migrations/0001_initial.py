"""Billing tables: invoices and their lines, pay links, payment methods, payments, transactions,
provider customers and events."""
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


class Service(Model):  # another plugin's table, only referenced
    class Meta:
        table_name = "service"


class Invoice(Model):
    customer = ForeignKeyField(Customer, on_delete="CASCADE")
    number = CharField(max_length=40, unique=True)
    issued_at = DateTimeField()
    due_at = DateTimeField()
    period_start = DateTimeField(null=True)
    period_end = DateTimeField(null=True)
    currency = CharField(max_length=3)
    subtotal = IntegerField()
    tax_total = IntegerField()
    total = IntegerField()
    amount_paid = IntegerField()
    status = CharField(max_length=10,
                       constraints=[Check("status in ('unpaid', 'paid', 'overdue')")])
    paid_at = DateTimeField(null=True)
    pdf_path = CharField(max_length=300)
    pdf_sha256 = CharField(max_length=64)
    pdf_rendered_at = DateTimeField(null=True)
    notes = TextField()

    class Meta:
        table_name = "invoice"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("customer", "id"), False), (("status", "due_at"), False),
                   (("customer", "issued_at"), False))


class GuestPayLink(Model):
    invoice = ForeignKeyField(Invoice, on_delete="CASCADE")
    token_hash = CharField(max_length=64, unique=True)
    expires_at = DateTimeField()
    revoked_at = DateTimeField(null=True)
    created_at = DateTimeField()
    created_by = CharField(max_length=60)
    last_used_at = DateTimeField(null=True)

    class Meta:
        table_name = "guest_pay_link"
        legacy_table_names = False  # index names start with the table's


class InvoiceLine(Model):
    invoice = ForeignKeyField(Invoice, on_delete="CASCADE")
    position = IntegerField()
    description = CharField(max_length=300)
    quantity = IntegerField()
    unit_amount = IntegerField()
    amount = IntegerField()
    tax_rate = IntegerField()
    tax_amount = IntegerField()
    occurred_at = DateTimeField(null=True)

    class Meta:
        table_name = "invoice_line"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("invoice", "position"), True),)


class InvoiceTaxLine(Model):
    invoice = ForeignKeyField(Invoice, on_delete="CASCADE")
    name = CharField(max_length=100)
    rate = IntegerField()
    taxable_amount = IntegerField()
    tax_amount = IntegerField()

    class Meta:
        table_name = "invoice_tax_line"
        legacy_table_names = False  # index names start with the table's


class PaymentMethod(Model):
    customer = ForeignKeyField(Customer, on_delete="CASCADE")
    provider = CharField(max_length=50)
    ref = CharField(max_length=255)
    brand = CharField(max_length=30)
    last4 = CharField(max_length=4)
    exp_month = IntegerField()
    exp_year = IntegerField()
    is_default = BooleanField()
    single_use = BooleanField()
    created_at = DateTimeField()

    class Meta:
        table_name = "payment_method"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("provider", "ref"), True), (("customer", "id"), False))


class Payment(Model):
    customer = ForeignKeyField(Customer, on_delete="CASCADE")
    invoice = ForeignKeyField(Invoice, null=True, on_delete="SET NULL")
    purpose = CharField(max_length=30)
    amount = IntegerField()
    currency = CharField(max_length=3)
    provider = CharField(max_length=50)
    provider_ref = CharField(max_length=255, index=True)
    method = ForeignKeyField(PaymentMethod, null=True, on_delete="SET NULL")
    method_label = CharField(max_length=60)
    status = CharField(max_length=20,
                       constraints=[Check("status in ("
                                          "'pending', 'requires_action', 'succeeded', 'failed', "
                                          "'canceled')")])
    attempt_key = CharField(max_length=100, unique=True)
    off_session = BooleanField()
    via = CharField(max_length=20)
    user_id = IntegerField(null=True)
    guest_link = ForeignKeyField(GuestPayLink, null=True, on_delete="SET NULL")
    failure_code = CharField(max_length=60)
    failure_message = CharField(max_length=300)
    reference = CharField(max_length=100)
    refunded_amount = IntegerField()
    detach_after = BooleanField()
    created_at = DateTimeField()
    updated_at = DateTimeField()
    succeeded_at = DateTimeField(null=True)

    class Meta:
        table_name = "payment"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("customer", "id"), False), (("status", "created_at"), False),
                   (("invoice", "status"), False))


class ProviderCustomer(Model):
    customer = ForeignKeyField(Customer, on_delete="CASCADE")
    provider = CharField(max_length=50)
    ref = CharField(max_length=255)

    class Meta:
        table_name = "provider_customer"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("customer", "provider"), True),)


class ProviderEvent(Model):
    provider = CharField(max_length=50)
    event_id = CharField(max_length=255)
    type = CharField(max_length=100)
    received_at = DateTimeField()

    class Meta:
        table_name = "provider_event"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("provider", "event_id"), True),)


class Transaction(Model):
    customer = ForeignKeyField(Customer, on_delete="CASCADE")
    occurred_at = DateTimeField()
    kind = CharField(max_length=10,
                     constraints=[Check("kind in ('charge', 'credit', 'payment', 'refund')")])
    description = CharField(max_length=300)
    amount = IntegerField()
    tax_rate = IntegerField()
    tax = IntegerField()
    currency = CharField(max_length=3)
    invoice = ForeignKeyField(Invoice, null=True, on_delete="SET NULL")
    service = ForeignKeyField(Service, null=True, on_delete="SET NULL")
    payment = ForeignKeyField(Payment, null=True, on_delete="SET NULL")
    reference = CharField(max_length=120, null=True, unique=True)
    created_at = DateTimeField()

    class Meta:
        table_name = "transaction"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("customer", "id"), False), (("customer", "invoice"), False))


TABLES = [Invoice, GuestPayLink, InvoiceLine, InvoiceTaxLine, PaymentMethod, Payment,
ProviderCustomer, ProviderEvent, Transaction]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
