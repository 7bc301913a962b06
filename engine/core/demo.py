"""Core demo records: two customers with contacts and sites, their logins, and two staff users;
and carol's own business, a second customer account her login switches to (SUP-2)."""

from __future__ import annotations

import os
import secrets
import string

from engine.db import database
from engine.models import Contact, Customer, LinkedContact, Site, StaffUser, User
from engine.security import hash_password


def demo_password() -> str:
    """``PORTICO_DEMO_PASSWORD``, or a generated one that meets the default policy."""
    given = os.environ.get("PORTICO_DEMO_PASSWORD")
    if given:
        return given
    alphabet = string.ascii_letters + string.digits
    return "Demo-" + "".join(secrets.choice(alphabet) for _ in range(10)) + "7!"


def seed(app, demo: dict) -> None:
    password = demo.setdefault("password", demo_password())
    hashed = hash_password(password)
    with database.atomic():
        alice_c = Customer.create(number="C-100001", name="Alice Example", kind="individual")
        alice = Contact.create(
            customer=alice_c,
            first_name="Alice",
            last_name="Example",
            email="alice@example.com",
            phone="+447700900123",
            is_primary=True,
        )
        Site.create(
            customer=alice_c,
            label="Home",
            line1="1 High Street",
            city="London",
            postcode="SW1A 1AA",
        )
        bob_c = Customer.create(
            number="C-100002", name="Bob's Bikes Ltd", kind="business", api_access=True
        )
        bob = Contact.create(
            customer=bob_c,
            first_name="Bob",
            last_name="Builder",
            email="bob@example.com",
            phone="+447700900456",
            is_primary=True,
            role="Owner",
        )
        carol = Contact.create(
            customer=bob_c,
            first_name="Carol",
            last_name="Accounts",
            email="carol@example.com",
            phone="+447700900789",
            role="Accounts",
        )
        Site.create(
            customer=bob_c,
            label="Shop",
            line1="22 Market Road",
            city="Manchester",
            postcode="M1 1AE",
        )
        Site.create(
            customer=bob_c,
            label="Warehouse",
            line1="Unit 4, Dock Lane",
            city="Salford",
            postcode="M50 3AZ",
        )
        users = {
            "alice": User.create(
                contact=alice,
                email="alice@example.com",
                password_hash=hashed,
                email_verified_at=alice_c.created_at,
            ),
            "bob": User.create(
                contact=bob,
                email="bob@example.com",
                password_hash=hashed,
                email_verified_at=bob_c.created_at,
            ),
            "carol": User.create(
                contact=carol,
                email="carol@example.com",
                password_hash=hashed,
                email_verified_at=bob_c.created_at,
            ),
        }
        # SUP-2: carol keeps the books at Bob's Bikes and runs her own catering business; one
        # login, two customer accounts (the header's switcher). Not in demo["customers"]: the
        # other plugins' demo data (services, invoices) is for alice and bob.
        catering = Customer.create(
            number="C-100003",
            name="Carol's Catering",
            kind="business",
            created_at=bob_c.created_at,
        )
        LinkedContact.create(
            user=users["carol"],
            contact=Contact.create(
                customer=catering,
                first_name="Carol",
                last_name="Accounts",
                email="carol@catering.example",  # her business address; she signs in as carol@
                phone="+447700900789",
                is_primary=True,
                role="Owner",
            ),
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
    demo["customers"] = {"alice": alice_c, "bob": bob_c}
    demo["carol_business"] = catering
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


def seeded() -> bool:
    return Customer.select().exists()
