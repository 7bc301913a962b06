"""Small builders for the billing tests: customers, staff, invoices, sandbox cards."""

from __future__ import annotations

from datetime import datetime

from engine import hookimpl
from engine.models import Contact, Customer, StaffUser, User
from engine.security import hash_password
from engine.testing import DEMO_PASSWORD

_HASH: list[str] = []


def password_hash() -> str:
    if not _HASH:
        _HASH.append(hash_password(DEMO_PASSWORD))
    return _HASH[0]


def customer(name: str = "alice") -> tuple[Customer, User]:
    """A customer with one contact and its login ``<name>@example.com``."""
    number = f"C-{name.upper()[:12]}"
    c = Customer.create(number=number, name=name.title())
    contact = Contact.create(
        customer=c, first_name=name.title(), email=f"{name}@example.com", is_primary=True
    )
    user = User.create(contact=contact, email=f"{name}@example.com", password_hash=password_hash())
    return c, user


def staff(permissions: str = "billing", name: str = "bea") -> StaffUser:
    return StaffUser.create(
        email=f"{name}@operator.example",
        name=name.title(),
        password_hash=password_hash(),
        permissions=permissions,
    )


def invoice_for(
    app,
    customer_id: int,
    *amounts: int,
    due_days: int = 14,
    issued_at: datetime | None = None,
    tax_rate: int | None = None,
):
    """Record charges (net pence) for a customer and issue them as one invoice."""
    from plugins.billing import invoicing

    for i, amount in enumerate(amounts or (1000,)):
        invoicing.record_transaction(
            app,
            customer_id,
            kind="charge" if amount > 0 else "credit",
            description=f"Line {i + 1}",
            amount=amount,
            tax_rate=tax_rate,
            occurred_at=issued_at,
        )
    return invoicing.issue_invoice(app, customer_id, due_days=due_days, issued_at=issued_at)


def sandbox_card(
    app,
    customer_id: int,
    number: str = "4242424242424242",
    month: int = 12,
    year: int = 2040,
    default: bool = True,
):
    """Save a sandbox test card the way the browser widget does (a token, never the number)."""
    from plugins.billing import payments
    from plugins.sandbox.provider import token_for

    _, setup = payments.start_setup(app, customer_id, "sandbox")
    return payments.save_card(
        app,
        None,
        customer_id,
        setup.ref,
        token_for(number, month, year),
        make_default=default,
        provider_id="sandbox",
    )


class Events:
    """A test plugin that records the billing events it sees (and can fail once, on purpose)."""

    def __init__(self):
        self.succeeded, self.failed, self.issued = [], [], []
        self.explode_once = False

    @hookimpl
    def payment_succeeded(self, app, payment):
        if self.explode_once:
            self.explode_once = False
            raise RuntimeError("the process died after the charge, before the commit")
        self.succeeded.append(payment.id)

    @hookimpl
    def payment_failed(self, app, payment):
        self.failed.append((payment.id, payment.failure_code))

    @hookimpl
    def invoice_issued(self, app, invoice):
        self.issued.append(invoice.number)
