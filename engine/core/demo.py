"""Core demo records: two customers with contacts and sites, their logins, and two staff users;
and carol's own business, a second customer account her login switches to (SUP-2)."""

from __future__ import annotations

import os
import secrets
import string
from typing import Any

from engine import upserts
from engine.context import Context
from engine.db import database
from engine.models import Customer, LinkedContact, StaffUser, User
from engine.security import hash_password


def demo_password() -> str:
    """``PORTICO_DEMO_PASSWORD``, or a generated one that meets the default policy."""
    given = os.environ.get("PORTICO_DEMO_PASSWORD")
    if given:
        return given
    alphabet = string.ascii_letters + string.digits
    return "Demo-" + "".join(secrets.choice(alphabet) for _ in range(10)) + "7!"


#: The demo's customers, contacts and sites, as the operator's systems would send them
#: (``engine.upserts``, the operator API's rules): by external id, with validated values.
CUSTOMERS = {
    "alice": ("DEMO-ALICE", {"name": "Alice Example", "kind": "individual", "number": "C-100001"}),
    "bob": ("DEMO-BOB", {"name": "Bob's Bikes Ltd", "kind": "business", "number": "C-100002"}),
}
CONTACTS: dict[str, tuple[str, dict[str, Any]]] = {
    "alice": (
        "DEMO-ALICE-1",
        {
            "customer_external_id": "DEMO-ALICE",
            "first_name": "Alice",
            "last_name": "Example",
            "email": "alice@example.com",
            "phone": "+447700900123",
            "is_primary": True,
        },
    ),
    "bob": (
        "DEMO-BOB-1",
        {
            "customer_external_id": "DEMO-BOB",
            "first_name": "Bob",
            "last_name": "Builder",
            "email": "bob@example.com",
            "phone": "+447700900456",
            "is_primary": True,
            "role": "Owner",
        },
    ),
    "carol": (
        "DEMO-BOB-2",
        {
            "customer_external_id": "DEMO-BOB",
            "first_name": "Carol",
            "last_name": "Accounts",
            "email": "carol@example.com",
            "phone": "+447700900789",
            "role": "Accounts",
        },
    ),
}
#: SUP-2: carol's own business, linked to her login (see ``seed``).
CATERING = {"name": "Carol's Catering", "kind": "business", "number": "C-100003"}
CATERING_CONTACT = {
    "customer_external_id": "DEMO-CAROL",
    "first_name": "Carol",
    "last_name": "Accounts",
    "email": "carol@catering.example",  # her business address; she signs in as carol@
    "phone": "+447700900789",
    "is_primary": True,
    "role": "Owner",
}
SITES = [
    (
        "DEMO-ALICE-HOME",
        {
            "customer_external_id": "DEMO-ALICE",
            "label": "Home",
            "line1": "1 High Street",
            "city": "London",
            "postcode": "SW1A 1AA",
        },
    ),
    (
        "DEMO-BOB-SHOP",
        {
            "customer_external_id": "DEMO-BOB",
            "label": "Shop",
            "line1": "22 Market Road",
            "city": "Manchester",
            "postcode": "M1 1AE",
        },
    ),
    (
        "DEMO-BOB-WAREHOUSE",
        {
            "customer_external_id": "DEMO-BOB",
            "label": "Warehouse",
            "line1": "Unit 4, Dock Lane",
            "city": "Salford",
            "postcode": "M50 3AZ",
        },
    ),
]


def seed(app, demo: dict) -> None:
    """Customers, contacts and sites through the operator's path (``engine.upserts``); then
    what only a demo does: logins with a known password (a real contact is invited, INT-2)
    and two staff users."""
    password = demo.setdefault("password", demo_password())
    hashed = hash_password(password)
    ctx = demo_context(app)
    with database.atomic():
        customers = {
            key: upserts.upsert_customer(ctx, external_id, values).row
            for key, (external_id, values) in CUSTOMERS.items()
        }
        # A portal setting, not something the operator's systems send: bob's business may
        # create API keys.
        Customer.update(api_access=True).where(Customer.id == customers["bob"].id).execute()
        contacts = {
            key: upserts.upsert_contact(ctx, external_id, values).row
            for key, (external_id, values) in CONTACTS.items()
        }
        for external_id, values in SITES:
            upserts.upsert_site(ctx, external_id, values)
        users = {
            key: User.create(
                contact=contact,
                email=contact.email,
                password_hash=hashed,
                email_verified_at=customers["alice" if key == "alice" else "bob"].created_at,
            )
            for key, contact in contacts.items()
        }
        # SUP-2: carol keeps the books at Bob's Bikes and runs her own catering business; one
        # login, two customer accounts (the header's switcher). Not in demo["customers"]: the
        # other plugins' demo data (services, invoices) is for alice and bob.
        catering = upserts.upsert_customer(ctx, "DEMO-CAROL", CATERING).row
        LinkedContact.create(
            user=users["carol"],
            contact=upserts.upsert_contact(ctx, "DEMO-CAROL-1", CATERING_CONTACT).row,
        )
        staff = {
            "admin": StaffUser.create(
                email="admin@example.com",
                name="Ada Admin",
                password_hash=hashed,
                permissions="admin",
            ),
            "agent": StaffUser.create(
                email="agent@example.com",
                name="Sam Support",
                password_hash=hashed,
                permissions="can_impersonate",
            ),
        }
    demo["customers"] = {key: Customer.get_by_id(c.id) for key, c in customers.items()}
    demo["carol_business"] = Customer.get_by_id(catering.id)
    demo["users"] = users
    demo["staff"] = staff
    demo.setdefault("logins", []).extend(
        [
            ("customer", "alice@example.com"),
            ("customer", "bob@example.com"),
            ("customer", "carol@example.com"),
            ("staff", "admin@example.com"),
            ("staff", "agent@example.com"),
        ]
    )


def demo_context(app) -> Context:
    """The context the demo seeds in: the system's, not audited (nobody changed anything;
    the demo's history is written as it would have happened)."""
    return Context(app=app, user_agent="portico demo", audited=False)


def seeded() -> bool:
    return Customer.select().exists()
