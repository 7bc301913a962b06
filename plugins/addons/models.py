"""Add-on tables: the operator's catalogue, and each add-on a service has (ADD-1, ADD-2).

Prices are integer minor units and include tax. A service's add-on keeps a
copy of what was bought, so editing the catalogue never rewrites history.
"""

from __future__ import annotations

import peewee
from peewee import BooleanField, CharField, ForeignKeyField, IntegerField

from engine.catalogue import CatalogueEntry
from engine.db import BaseModel, CurrencyField, UTCDateTimeField, utcnow
from engine.models import Customer, Service, Synced
from plugins.billing.public import Payment

CATEGORIES = ("roaming", "static_ip", "premium_content", "hardware", "speed_boost")
#: awaiting_payment: the one-off price is being charged; pending: being provisioned;
#: active; failed: provisioning refused (the one-off price is refunded); canceled: not paid;
#: removing: being taken off; removed.
STATUSES = ("awaiting_payment", "pending", "active", "failed", "canceled", "removing", "removed")
#: Add-ons a service has or is getting: at most one of each product at a time.
LIVE_STATUSES = ("awaiting_payment", "pending", "active", "removing")


class AddonProduct(CatalogueEntry, Synced):
    """One catalogue entry for one service type. ``provisioner`` names who sets it up on the
    network (a ``provision_addon`` hook implementation); ``removable``: the customer may
    take it off online. ``external_id``/``updated_at`` (``Synced``): the operator's id for
    it when their systems keep the catalogue (INT-1, operator API)."""

    audit_prefix = "addon"

    category = CharField(
        max_length=20,
        constraints=[
            peewee.Check(
                "category in ('roaming', 'static_ip', 'premium_content', 'hardware', 'speed_boost')"
            )
        ],
    )
    one_off_price = IntegerField(default=0)
    recurring_price = IntegerField(default=0)
    period_days = IntegerField(default=30)
    provisioner = CharField(max_length=60, default="instant")
    removable = BooleanField(default=True)


class ServiceAddon(BaseModel):
    """An add-on on a service, from the order to its removal."""

    customer = ForeignKeyField(Customer, backref="addons", on_delete="CASCADE")
    service = ForeignKeyField(Service, backref="addons", on_delete="CASCADE")
    product = ForeignKeyField(AddonProduct, null=True, on_delete="SET NULL")
    name = CharField(max_length=100)
    category = CharField(max_length=20)
    one_off_price = IntegerField(default=0)
    recurring_price = IntegerField(default=0)
    currency = CurrencyField()
    period_days = IntegerField(default=30)
    provisioner = CharField(max_length=60)
    removable = BooleanField(default=True)
    status = CharField(
        max_length=20,
        default="pending",
        constraints=[
            peewee.Check(
                "status in ('awaiting_payment', 'pending', 'active', 'failed', 'canceled', "
                "'removing', 'removed')"
            )
        ],
    )
    payment = ForeignKeyField(Payment, null=True, unique=True, on_delete="SET NULL")
    reference = CharField(max_length=100, null=True)  # the provisioner's, while it lasts
    detail = CharField(max_length=200, default="")  # what the customer needs: an address, ...
    failure_message = CharField(max_length=300, default="")
    attempts = IntegerField(default=0)  # provisioning answers of "pending" so far
    via = CharField(max_length=20, default="portal")
    user_id = IntegerField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    activated_at = UTCDateTimeField(null=True)
    removed_at = UTCDateTimeField(null=True)
    next_charge_at = UTCDateTimeField(null=True)
    charged_periods = IntegerField(default=0)

    class Meta:
        indexes = (
            (("customer", "id"), False),
            (("service", "id"), False),
            (("provisioner", "reference"), True),
            (("status", "next_charge_at"), False),
        )

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES


MODELS = (AddonProduct, ServiceAddon)
