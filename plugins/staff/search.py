"""Finding a customer from one search box (the console's ``/staff`` and ``GET
/api/v1/staff/customers?q=``): by name, customer number or external id, a contact's email or
phone, a service's MSISDN, identifier or external id, or an invoice number.

- Contains, case-insensitive: the customer's name and number, a contact's email and phone, a
  service's identifier (an MSISDN typed as ``07700 900123`` or ``+44 7700 900123`` finds
  ``+447700900123``: ``phone_forms``).
- Exact: the operator's external ids (customer, service) and an invoice number, each read
  through a unique index.

One query: the customers whose own columns match, or whose id is among the contacts', the
services' or the invoices' that match. PostgreSQL answers each subquery once (a hashed
subplan) and walks the customers newest first until the page is full. The contains matches
read their tables through; docs/operations.md names the trigram indexes that make them
indexed on a large install.
"""

from __future__ import annotations

import re

from engine.models import Contact, Customer, Service

#: A query made of what people type in a phone number, with this many digits at least.
_PHONE = re.compile(r"^\+?[\d\s().-]+\Z")
_MIN_PHONE_DIGITS = 6


def phone_forms(q: str) -> list[str]:
    """The digits of a phone-number-like query, as stored numbers hold them: ``+44 7700
    900123`` → ``447700900123``; a national number's trunk 0 dropped (``07700 900123`` →
    ``7700900123``), so either finds the E.164 ``+447700900123``. None for other text."""
    if not _PHONE.match(q):
        return []
    digits = re.sub(r"\D", "", q)
    if len(digits) < _MIN_PHONE_DIGITS:
        return []
    forms = [digits]
    if digits.startswith("0"):
        forms.append(digits.lstrip("0"))
    return [f for f in forms if len(f) >= _MIN_PHONE_DIGITS and f != q]


def search_customers(app, q: str | None):
    """Customers that ``q`` names (every customer for an empty query), for ``paginate``."""
    query = Customer.select()
    q = (q or "").strip()
    if not q:
        return query
    phones = phone_forms(q)
    contact_match = Contact.email.contains(q) | Contact.phone.contains(q)
    service_match = Service.identifier.contains(q) | (Service.external_id == q)
    for digits in phones:
        contact_match |= Contact.phone.contains(digits)
        service_match |= Service.identifier.contains(digits)
    match = (
        Customer.name.contains(q)
        | Customer.number.contains(q)
        | (Customer.external_id == q)
        | Customer.id.in_(Contact.select(Contact.customer).where(contact_match))
        | Customer.id.in_(Service.select(Service.customer).where(service_match))
    )
    invoices = _invoice_customers(app, q)
    if invoices is not None:
        match |= Customer.id.in_(invoices)
    return query.where(match)


def _invoice_customers(app, q: str):
    """The customer of the invoice numbered ``q`` (as typed, or in capitals), when billing is
    on; None when it is off."""
    if "billing" not in app.plugins.enabled:
        return None
    from plugins.billing.public import Invoice

    return Invoice.select(Invoice.customer).where(Invoice.number.in_(sorted({q, q.upper()})))
