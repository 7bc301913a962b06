"""Webhook endpoints, events and deliveries (INT-6)."""
from peewee import (
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)


class WebhookEndpoint(Model):
    url = CharField(max_length=1000)
    description = CharField(max_length=200)
    event_types = TextField()
    secret = CharField(max_length=300)
    enabled = BooleanField()
    created_at = DateTimeField()
    updated_at = DateTimeField()

    class Meta:
        table_name = "webhook_endpoint"
        legacy_table_names = False  # index names start with the table's


class WebhookEvent(Model):
    uid = CharField(max_length=40, unique=True)
    type = CharField(max_length=60)
    data = TextField()
    customer_id = IntegerField(null=True)
    created_at = DateTimeField()

    class Meta:
        table_name = "webhook_event"
        legacy_table_names = False


class WebhookDelivery(Model):
    event = ForeignKeyField(WebhookEvent, on_delete="CASCADE")
    endpoint = ForeignKeyField(WebhookEndpoint, on_delete="CASCADE")
    status = CharField(max_length=20)
    attempts = IntegerField()
    next_attempt_at = DateTimeField(null=True)
    retry_until = DateTimeField()
    last_attempt_at = DateTimeField(null=True)
    last_status_code = IntegerField(null=True)
    last_error = CharField(max_length=300)
    created_at = DateTimeField()
    delivered_at = DateTimeField(null=True)

    class Meta:
        table_name = "webhook_delivery"
        legacy_table_names = False
        indexes = (
            (("event", "endpoint"), True),
            (("status", "next_attempt_at"), False),
            (("endpoint", "id"), False),
        )


TABLES = [WebhookEndpoint, WebhookEvent, WebhookDelivery]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(list(reversed(TABLES)), safe=False)
