"""Small builders for the services and usage tests: customers, services, buckets, events."""

from __future__ import annotations

import itertools
from datetime import timedelta

from engine.db import utcnow
from engine.models import Contact, Customer, Product, Service, User
from plugins.usage.models import Bucket
from plugins.usage.rating import UsageIn

GB = 10**9
numbers = itertools.count(1)


def customer_user(name: str = "Dana") -> User:
    n = next(numbers)
    customer = Customer.create(number=f"C-7{n:05d}", name=f"{name} Example")
    contact = Contact.create(
        customer=customer, first_name=name, email=f"{name.lower()}{n}@example.com"
    )
    return User.create(contact=contact, email=f"{name.lower()}{n}@example.com")


def product(**values) -> Product:
    values.setdefault("code", f"plan-{next(numbers)}")
    values.setdefault("name", "Mobile 10GB")
    values.setdefault("monthly_fee", 1000)
    return Product.create(**values)


def service_for(user_or_customer, prod: Product | None = None, **values) -> Service:
    customer_id = (
        user_or_customer.contact.customer_id
        if isinstance(user_or_customer, User)
        else user_or_customer.id
    )
    now = utcnow()
    values.setdefault("name", f"Mobile - +44 7700 9{next(numbers):05d}")
    values.setdefault("period_start", now - timedelta(days=10))
    values.setdefault("renews_at", now + timedelta(days=20))
    values.setdefault("monthly_fee", 1000)
    return Service.create(customer=customer_id, product=prod or product(), **values)


def bucket(service: Service, type: str = "data", amount: int = 10 * GB, **values) -> Bucket:
    unit = {"data": "bytes", "voice": "seconds", "sms": "messages", "mms": "messages"}.get(
        type, service.currency
    )
    values.setdefault("remaining", amount)
    return Bucket.create(
        service=service.id,
        type=type,
        initial=amount,
        unit=unit,
        name=values.pop("name", f"{type} bucket"),
        **values,
    )


def event(
    service: Service, quantity: int, type: str = "data", id: str | None = None, **values
) -> UsageIn:
    values.setdefault("occurred_at", utcnow() - timedelta(minutes=5))
    if type == "voice":
        values.setdefault("destination", "offnet")
    return UsageIn(id or f"ev-{next(numbers)}", service.id, type, quantity, **values)


def event_json(
    service: Service, quantity: int, type: str = "data", id: str | None = None, **values
) -> dict:
    e = event(service, quantity, type, id, **values)
    out = {
        "id": e.id,
        "service_id": e.service_id,
        "type": e.type,
        "quantity": e.quantity,
        "occurred_at": e.occurred_at.isoformat(),
    }
    if e.destination:
        out["destination"] = e.destination
    if e.international:
        out["international"] = True
    if e.counterparty:
        out["counterparty"] = e.counterparty
    return out
