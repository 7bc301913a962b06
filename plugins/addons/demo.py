"""The demo add-on catalogue (ADD-1) per service type, and add-ons the demo services already have.

Operators keep theirs with the operator API or the staff console.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from engine.core.demo import demo_context
from engine.db import database, utcnow
from plugins.addons.models import ServiceAddon
from plugins.addons.service import upsert_product

#: service type: (code, category, name, one-off, recurring per 30 days, provisioner,
#: removable, description). Prices in pence, tax included.
CATALOGUE = {
    "mobile": [
        (
            "roam-eu",
            "roaming",
            "EU roaming",
            0,
            500,
            "instant",
            True,
            "Use your allowances in the EU as at home.",
        ),
        (
            "roam-world",
            "roaming",
            "Worldwide roaming",
            0,
            1500,
            "instant",
            True,
            "Calls, texts and 5 GB a month in 80 countries.",
        ),
        (
            "music",
            "premium_content",
            "Music streaming",
            0,
            999,
            "instant",
            True,
            "Ad-free music streaming on your line.",
        ),
        (
            "boost-5g",
            "speed_boost",
            "5G Max speed",
            0,
            300,
            "instant",
            True,
            "The fastest 5G speeds your phone supports.",
        ),
    ],
    "prepaid": [
        (
            "roam-eu",
            "roaming",
            "EU roaming",
            0,
            500,
            "instant",
            True,
            "Use your allowances in the EU as at home.",
        ),
    ],
    "broadband": [
        (
            "static-ip",
            "static_ip",
            "Static IP address",
            1000,
            500,
            "static_ip",
            True,
            "One fixed public IPv4 address, for servers and remote access.",
        ),
        (
            "boost-900",
            "speed_boost",
            "Speed boost to 900 Mb/s",
            0,
            1000,
            "instant",
            True,
            "Up to 900 Mb/s on your full-fibre line.",
        ),
        (
            "router-wifi6",
            "hardware",
            "Wi-Fi 6 router rental",
            2500,
            300,
            "instant",
            False,
            "A mesh-ready Wi-Fi 6 router, delivered. Return it when you stop renting.",
        ),
    ],
    "iptv": [
        (
            "sports",
            "premium_content",
            "Sports pack",
            0,
            1500,
            "instant",
            True,
            "Live football, rugby and cricket.",
        ),
        (
            "movies",
            "premium_content",
            "Movies pack",
            0,
            800,
            "instant",
            True,
            "New films every week.",
        ),
        (
            "stb-4k",
            "hardware",
            "4K set-top box rental",
            2000,
            400,
            "instant",
            False,
            "A 4K HDR box with recording. Return it when you stop renting.",
        ),
    ],
}


def seed(app, demo: dict) -> None:
    """The catalogue as the operator's systems send it (by external id), then add-ons the
    demo services took before today (back-dated: no feed does that)."""
    ctx = demo_context(app)
    now = utcnow().replace(microsecond=0)
    products = {}
    with database.atomic():
        for service_type, entries in CATALOGUE.items():
            for position, (
                code,
                category,
                name,
                once,
                monthly,
                provisioner,
                removable,
                text,
            ) in enumerate(entries):
                values: dict[str, Any] = {"service_type": service_type, "name": name}
                values["category"] = category
                values |= {"one_off_price": once, "recurring_price": monthly}
                values |= {"provisioner": provisioner, "removable": removable}
                values |= {"description": text, "position": position}
                key = f"{service_type}-{code}"  # its external id and its code
                products[key] = upsert_product(ctx, key, values).row
        services = demo.get("services", {})
        taken = [
            ("alice_broadband", "broadband-static-ip", "203.0.113.1", 40),
            ("bob_broadband", "broadband-boost-900", None, 75),
            ("alice_mobile", "mobile-roam-eu", None, 12),
        ]
        for key, code, address, days_ago in taken:
            service, product = services.get(key), products[code]
            if service is None:
                continue
            since = now - timedelta(days=days_ago)
            periods = days_ago // product.period_days + 1
            ServiceAddon.create(
                customer=service.customer_id,
                service=service.id,
                product=product.id,
                name=product.name,
                category=product.category,
                one_off_price=product.one_off_price,
                recurring_price=product.recurring_price,
                currency=product.currency,
                period_days=product.period_days,
                provisioner=product.provisioner,
                removable=product.removable,
                status="active",
                reference=address,
                detail=address or "",
                created_at=since,
                activated_at=since,
                charged_periods=periods,
                next_charge_at=since + timedelta(days=periods * product.period_days),
            )
