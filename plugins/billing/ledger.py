"""The customer's transactions as a list (BILL-4): filtered, paged newest first by date, as CSV.

One implementation behind the API, the portal page and both CSV downloads.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from typing import Iterator
from zoneinfo import ZoneInfo

from engine.api import paginate_dated
from engine.context import owned
from engine.money import plain
from plugins.billing.models import Invoice, Payment, Transaction

CSV = "text/csv; charset=utf-8"
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


def _start_of(day: date, tz: str) -> datetime:
    return datetime.combine(day, time.min, ZoneInfo(tz))


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
    if filters.get("start"):
        query = query.where(Transaction.occurred_at >= _start_of(filters["start"], tz))
    if filters.get("end"):
        query = query.where(
            Transaction.occurred_at < _start_of(filters["end"] + timedelta(days=1), tz)
        )
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
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    batch: list[Transaction] = []

    def flush() -> bytes:
        for t in with_invoice_numbers(batch):
            writer.writerow(
                [
                    t.occurred_at.astimezone(zone).isoformat(timespec="seconds"),
                    t.kind,
                    _safe(t.description),
                    plain(t.amount, t.currency),
                    plain(t.tax, t.currency),
                    plain(t.total, t.currency),
                    t.currency,
                    t.invoice_number or "",
                    "invoiced" if t.invoiced else "not_invoiced",
                ]
            )
        batch.clear()
        out = buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
        return out

    for row in query.iterator():
        batch.append(row)
        if len(batch) == 500:
            yield flush()
    yield flush()


def _safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
