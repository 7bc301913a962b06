"""The demo top-up catalogue (TOP-2) for each service type, and an auto top-up on Alice's prepaid line.

Operators keep theirs with the operator API or the staff console; this is only a starting
point that shows every kind of entry.
"""

from __future__ import annotations

from typing import Any

from engine.core.demo import demo_context
from engine.db import database
from plugins.topups.models import AutoTopup
from plugins.topups.service import upsert_product

GB, MINUTE = 10**9, 60

#: code, name, kind, quantity, price (pence, tax included), validity days
DATA = [
    ("data-1gb", "1 GB data", 1, 200),
    ("data-5gb", "5 GB data", 5, 500),
    ("data-10gb", "10 GB data", 10, 800),
    ("data-20gb", "20 GB data", 20, 1200),
    ("data-50gb", "50 GB data", 50, 2000),
]
MOBILE = [(code, name, "data", gb * GB, price, 30) for code, name, gb, price in DATA] + [
    ("voice-100", "100 minutes", "voice", 100 * MINUTE, 300, 30),
    ("voice-500", "500 minutes", "voice", 500 * MINUTE, 800, 30),
    ("sms-100", "100 texts", "sms", 100, 200, 30),
    ("sms-500", "500 texts", "sms", 500, 500, 30),
]
CREDIT = [
    (f"credit-{pounds}", f"£{pounds} credit", "monetary", pounds * 100, pounds * 100, None)
    for pounds in (5, 10, 20, 50, 100)
]
BROADBAND = [
    ("bb-100gb", "100 GB extra", "data", 100 * GB, 500, 30),
    ("bb-500gb", "500 GB extra", "data", 500 * GB, 1500, 30),
]
#: code, name, kind, quantity, price, validity days (None: no expiry) by service type
CATALOGUE: dict[str, list[tuple[str, str, str, int, int, int | None]]] = {
    "mobile": [*MOBILE],
    "prepaid": [*MOBILE, *CREDIT],
    "broadband": [*BROADBAND],
}


def seed(app, demo: dict) -> None:
    """The catalogue as the operator's systems send it (by external id, which is also the
    entry's code), then an auto top-up, which only a customer sets up."""
    ctx = demo_context(app)
    with database.atomic():
        for service_type, entries in CATALOGUE.items():
            for position, (code, name, kind, quantity, price, days) in enumerate(entries):
                values: dict[str, Any] = {"service_type": service_type, "kind": kind}
                values["name"] = name
                values |= {"quantity": quantity, "price": price, "position": position}
                upsert_product(ctx, f"{service_type}-{code}", {**values, "validity_days": days})
        custom: dict[str, Any] = {"service_type": "prepaid", "kind": "monetary"}
        custom["name"] = "Credit, your amount"
        custom |= {"custom": True, "min_amount": 100, "max_amount": 25000, "position": 99}
        custom["description"] = "Any amount from £1 to £250."
        upsert_product(ctx, "prepaid-credit-custom", custom)
        prepaid = demo.get("services", {}).get("alice_prepaid")
        if prepaid is not None and demo.get("payment_methods", {}).get("alice") is not None:
            AutoTopup.create(
                customer=prepaid.customer_id,
                service=prepaid.id,
                enabled=True,
                threshold=300,
                amount=1000,
                currency=prepaid.currency,
            )
