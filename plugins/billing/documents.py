"""Invoice PDFs (BILL-3), rendered once and stored, and the archive of many (BILL-7).

The PDF comes from the theme template ``billing/invoice_pdf.html`` (an
operator's theme may restyle it), rendered by WeasyPrint in the worker right
after the invoice is issued, and stored under ``<data dir>/invoices/``. A
download serves the stored bytes; it never renders again, so the document a
customer files for tax is the one that was issued.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import zipfile
from pathlib import Path
from typing import Iterable, Iterator

from engine.db import utcnow
from engine.models import Customer, Site
from engine.notify import customer_users
from plugins.billing.models import Invoice

#: The most invoices one archive may hold (a decade of monthly bills, many times over).
ARCHIVE_LIMIT = 500


def pdf_file(app, invoice: Invoice) -> Path:
    return app.settings.data_path / invoice.pdf_path


def _locale_of(app, invoice: Invoice) -> str:
    user = customer_users(invoice.customer_id).first()
    return (user.locale if user and user.locale else app.settings.default_locale)


def render_pdf(app, invoice: Invoice) -> bytes:
    """The invoice as PDF bytes, from the theme's template."""
    import weasyprint  # heavy: imported only where PDFs are made

    customer = Customer.get_by_id(invoice.customer_id)
    site = Site.select().where(Site.customer == customer.id).order_by(Site.id).first()
    html = app.theme.render_plain(
        "billing/invoice_pdf.html", _locale_of(app, invoice), app.settings.default_timezone,
        invoice=invoice, lines=list(invoice.lines.order_by(invoice.lines.model.position)),
        tax_lines=list(invoice.tax_lines), customer=customer, site=site,
        seller=app.settings.plugin("billing"))
    return weasyprint.HTML(string=html, base_url=str(app.settings.data_path)).write_pdf()


def store_pdf(app, invoice_id: int) -> Invoice:
    """Render and store an invoice's PDF unless it already has one (safe to run twice at once)."""
    invoice = Invoice.get_by_id(invoice_id)
    if invoice.pdf_path and pdf_file(app, invoice).is_file():
        return invoice
    relative = Path("invoices") / str(invoice.customer_id) / f"{invoice.number}.pdf"
    final = app.settings.data_path / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    if not final.exists():
        data = render_pdf(app, invoice)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.{id(data)}.tmp")
        tmp.write_bytes(data)
        try:
            os.link(tmp, final)  # create-if-absent: the first renderer wins, nobody overwrites
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    digest = hashlib.sha256(final.read_bytes()).hexdigest()
    (Invoice.update(pdf_path=str(relative), pdf_sha256=digest, pdf_rendered_at=utcnow())
     .where((Invoice.id == invoice.id) & (Invoice.pdf_path == "")).execute())
    return Invoice.get_by_id(invoice.id)


def pdf_bytes(app, invoice: Invoice) -> bytes:
    """The stored PDF (stored now if the background render has not run yet)."""
    invoice = store_pdf(app, invoice.id)
    return pdf_file(app, invoice).read_bytes()


def download_name(invoice: Invoice) -> str:
    return f"{invoice.number}.pdf"


# -- the archive (BILL-7) --------------------------------------------------------------------

class _Chunks(io.RawIOBase):
    """A write-only, unseekable file that hands out what was written (zipfile streams into it)."""

    def __init__(self):
        super().__init__()
        self.parts: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.size += len(chunk)
        return len(chunk)

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def stream_archive(app, invoices: Iterable[Invoice]) -> Iterator[bytes]:
    """A zip of the invoices' stored PDFs plus an ``invoices.csv`` index, produced as it is sent."""
    sink = _Chunks()
    index = io.StringIO()
    writer = csv.writer(index)
    writer.writerow(["number", "issued", "due", "currency", "subtotal", "tax", "total",
                     "paid", "status", "file"])
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for invoice in invoices:
            name = download_name(invoice)
            archive.writestr(_info(name, invoice), pdf_bytes(app, invoice))
            writer.writerow([invoice.number, invoice.issued_at.date().isoformat(),
                             invoice.due_at.date().isoformat(), invoice.currency,
                             _units(invoice.subtotal, invoice.currency),
                             _units(invoice.tax_total, invoice.currency),
                             _units(invoice.total, invoice.currency),
                             _units(invoice.amount_paid, invoice.currency), invoice.status, name])
            yield sink.take()
        archive.writestr(_info("invoices.csv", None), index.getvalue().encode("utf-8"))
    yield sink.take()


def _info(name: str, invoice: Invoice | None) -> zipfile.ZipInfo:
    when = (invoice.issued_at if invoice is not None else utcnow()).timetuple()[:6]
    info = zipfile.ZipInfo(name, date_time=when)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _units(amount: int, currency: str) -> str:
    from babel.numbers import get_currency_precision
    digits = get_currency_precision(currency)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10 ** digits)
    return f"{sign}{whole}.{frac:0{digits}d}" if digits else f"{sign}{whole}"


def archive_name(invoices: list[Invoice]) -> str:
    if not invoices:
        return "invoices.zip"
    first = min(i.issued_at for i in invoices).date().isoformat()
    last = max(i.issued_at for i in invoices).date().isoformat()
    return f"invoices-{first}-to-{last}.zip"
