"""Demo products and services for the demo customers: every kind and every status light."""

from __future__ import annotations

from datetime import timedelta

from engine import upserts
from engine.core.demo import demo_context
from engine.db import database, utcnow
from engine.models import Customer, Service, Site

#: The plans a service on each plan may switch to (SVC-3), by code (each product's external id).
COMPATIBLE = {"mobile-20gb": ["mobile-50gb"], "mobile-50gb": ["mobile-20gb"]}

PRODUCTS = [
    # code, name, type, monthly fee (pence), allow_cancel, allow_modify, description
    (
        "mobile-20gb",
        "Mobile 20GB",
        "mobile",
        1500,
        True,
        True,
        "20 GB data, 500 UK minutes, 60 international minutes and 1,000 texts every month.",
    ),
    (
        "mobile-50gb",
        "Mobile 50GB",
        "mobile",
        2500,
        True,
        True,
        "50 GB data, unlimited UK minutes, 120 international minutes and unlimited texts.",
    ),
    (
        "mobile-biz-10gb",
        "Business Mobile 10GB",
        "mobile",
        1800,
        False,
        True,
        "10 GB data, 1,000 UK minutes and 500 texts every month. 24-month contract.",
    ),
    (
        "fibre-500",
        "Fibre 500",
        "broadband",
        3500,
        False,
        True,
        "Full-fibre broadband up to 500 Mb/s with a 2 TB fair-use allowance.",
    ),
    ("iptv-plus", "TV Plus", "iptv", 1200, True, True, "80 live channels and catch-up TV."),
    (
        "prepaid-payg",
        "Pay as you go",
        "prepaid",
        0,
        True,
        False,
        "No monthly fee: buy bundles, or pay from your credit as you go.",
    ),
]


def seed(app, demo: dict) -> None:
    """Products and services through the operator's path (``engine.upserts``), then what
    only a demo does: back-date them, so the portal shows months of history."""
    now = utcnow().replace(microsecond=0)
    day = timedelta(days=1)
    ctx = demo_context(app)
    with database.atomic():
        products = {}
        for code, name, kind, fee, cancel, modify, text in PRODUCTS:
            values = {
                "name": name,
                "service_type": kind,
                "monthly_fee": fee,
                "allow_cancel": cancel,
                "allow_modify": modify,
                "description": text,
                "compatible_plans": COMPATIBLE.get(code, []),
            }
            products[code] = upserts.upsert_product(ctx, code, values).row
        customer_of = {
            "alice": demo["customers"]["alice"].external_id,
            "bob": demo["customers"]["bob"].external_id,
        }
        sites = {s.label: s.external_id for s in Site.select()}

        def make(key, who, code, name, ident, created_days, period_day, site=None, **extra):
            product = products[code]
            period_start = now - period_day * day
            values = {
                "customer_external_id": customer_of[who],
                "product": code,
                "name": name,
                "identifier": ident,
                "site_external_id": sites[site] if site else None,
                "renews_at": period_start + product.period_days * day,
            }
            history = {"created_at": now - created_days * day, "period_start": period_start}
            for field in ("status", "suspended_reason", "renews_at", "expires_at", "auto_renew"):
                if field in extra:
                    values[field] = extra.pop(field)
            service = upserts.upsert_service(ctx, f"DEMO-{key.upper()}", values).row
            Service.update(**history, **extra).where(Service.id == service.id).execute()
            services[key] = Service.get_by_id(service.id)

        services: dict[str, Service] = {}
        make(
            "alice_mobile",
            "alice",
            "mobile-20gb",
            "Mobile - +44 7700 900123",
            "+447700900123",
            410,
            19,
            esim_activation_code="LPA:1$smdp.portico.example$A1B2-C3D4-E5F6-G7H8",
        )
        make(
            "alice_broadband",
            "alice",
            "fibre-500",
            "Broadband - 1 High Street",
            "FTTP-LDN-004512",
            220,
            9,
            site="Home",
        )
        make(
            "alice_tv",
            "alice",
            "iptv-plus",
            "TV - 1 High Street",
            "IPTV-88213",
            150,
            27,
            site="Home",
            auto_renew=False,
        )
        make(
            "alice_prepaid",
            "alice",
            "prepaid-payg",
            "Prepaid - +44 7700 900555",
            "+447700900555",
            120,
            0,
            renews_at=None,
        )
        make(
            "bob_mobile",
            "bob",
            "mobile-biz-10gb",
            "Mobile - +44 7700 900456",
            "+447700900456",
            700,
            26,
            esim_activation_code="LPA:1$smdp.portico.example$B0B0-1234-5678-9ABC",
        )
        make(
            "bob_mobile_2",
            "bob",
            "mobile-biz-10gb",
            "Mobile - +44 7700 900457",
            "+447700900457",
            500,
            40,
            status="suspended",
            suspended_reason="Payment overdue",
            renews_at=now - 10 * day,
        )
        make(
            "bob_broadband",
            "bob",
            "fibre-500",
            "Broadband - 22 Market Road",
            "FTTP-MAN-117720",
            640,
            14,
            site="Shop",
        )
        make(
            "bob_old_mobile",
            "bob",
            "mobile-biz-10gb",
            "Mobile - +44 7700 900458",
            "+447700900458",
            800,
            50,
            status="expired",
            auto_renew=False,
            renews_at=now - 20 * day,
            expires_at=now - 20 * day,
        )
        for customer in demo["customers"].values():  # "Customer since": before their first
            # service, not the moment the demo was seeded
            first = min(s.created_at for s in services.values() if s.customer_id == customer.id)
            since = first - 30 * day
            if customer.created_at > since:
                Customer.update(created_at=since).where(Customer.id == customer.id).execute()
                customer.created_at = since
    demo["products"] = {**demo.get("products", {}), **products}
    demo["services"] = services
