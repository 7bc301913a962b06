"""The customer's transactions as a list (BILL-4): filtered, paged newest first by date, as CSV.

One implementation behind the API, the portal page and both CSV downloads.
"""

from __future__ import annotations

from typing import Iterator
from zoneinfo import ZoneInfo

from peewee import chunked

from engine import csvexport, dayrange
from engine.api import paginate_dated
from engine.context import owned
from engine.money import plain
from plugins.billing.models import Invoice, Payment, Transaction

CSV_COLUMNS = (
    "date",
    "type",
    "description",
    "net",
    "tax",
    "amount",
    "currency",
    "invoice",
    "status",
)
CSV_LIMIT = 100_000  # rows in one download: years of a busy account, within a response's time


def selected(customer_id: int, filters: dict, tz: str):
    """The customer's transactions that ``filters`` (a loaded TransactionFilter) ask for.

    ``from`` and ``to`` are days as the customer sees them, in ``tz``: both included.
    """
    query = owned(Transaction, customer_id)
    status = filters.get("status")
    if status == "invoiced":
        query = query.where(Transaction.invoice.is_null(False))
    elif status == "not_invoiced":
        query = query.where(Transaction.invoice.is_null())
    if filters.get("kind"):
        query = query.where(Transaction.kind == filters["kind"])
    start, end = dayrange.bounds(filters.get("start"), filters.get("end"), tz)
    if start is not None:
        query = query.where(Transaction.occurred_at >= start)
    if end is not None:
        query = query.where(Transaction.occurred_at < end)
    return query


def page(customer_id: int, filters: dict, tz: str) -> dict:
    """One page, newest first by date (a charge recorded late sits on its own day)."""
    found = paginate_dated(
        selected(customer_id, filters, tz), Transaction.occurred_at, Transaction.id, filters
    )
    with_invoice_numbers(found["items"])
    with_payment_refs(found["items"])
    return found


def with_payment_refs(rows: list[Transaction]) -> list[Transaction]:
    """Attach ``provider_ref`` and ``three_d_secure`` of the payment behind each transaction
    that has one (BILL-2), with one query for the whole page."""
    ids = {t.payment_id for t in rows if t.payment_id}
    found = (
        {
            p.id: p
            for p in Payment.select(Payment.id, Payment.provider_ref, Payment.three_d_secure).where(
                Payment.id.in_(ids)
            )
        }
        if ids
        else {}
    )
    for t in rows:
        payment = found.get(t.payment_id)
        t.provider_ref = payment.provider_ref if payment else None
        t.three_d_secure = payment.three_d_secure if payment else None
    return rows


def with_invoice_numbers(rows: list[Transaction]) -> list[Transaction]:
    """Attach ``invoice_number`` to each transaction with one query for the whole page."""
    ids = {t.invoice_id for t in rows if t.invoice_id}
    numbers = (
        dict(Invoice.select(Invoice.id, Invoice.number).where(Invoice.id.in_(ids)).tuples())
        if ids
        else {}
    )
    for t in rows:
        t.invoice_number = numbers.get(t.invoice_id)
    return rows


def csv_name(filters: dict) -> str:
    span = "-".join(str(filters[k]) for k in ("start", "end") if filters.get(k))
    return f"transactions-{span}.csv" if span else "transactions.csv"


def csv_rows(customer_id: int, filters: dict, tz: str) -> Iterator[bytes]:
    """The CSV, a header then one line per transaction, newest first, streamed in chunks.

    Dates are local to ``tz`` with their offset; amounts are plain decimals ("-12.50").
    """
    zone = ZoneInfo(tz)
    query = (
        selected(customer_id, filters, tz)
        .order_by(Transaction.occurred_at.desc(), Transaction.id.desc())
        .limit(CSV_LIMIT)
    )

    def rows() -> Iterator[list]:
        for batch in chunked(query.iterator(), csvexport.CHUNK_ROWS):
            for t in with_invoice_numbers(batch):
                yield [
                    t.occurred_at.astimezone(zone).isoformat(timespec="seconds"),
                    t.kind,
                    csvexport.safe(t.description),
                    plain(t.amount, t.currency),
                    plain(t.tax, t.currency),
                    plain(t.total, t.currency),
                    t.currency,
                    t.invoice_number or "",
                    "invoiced" if t.invoiced else "not_invoiced",
                ]

    return csvexport.stream(CSV_COLUMNS, rows())
