"""Invoice PDFs (BILL-3), rendered once and stored, and archives of many (BILL-7).

The PDF comes from the theme template ``billing/invoice_pdf.html`` (an
operator's theme may restyle it), rendered by WeasyPrint in the background right
after the invoice is issued, or by a bill run (``portico billing run``), and kept
in the shared storage (``app.storage``, engine/storage.py) under
``invoices/<customer id>/<number>.pdf``. A download streams the stored file; it
never renders again, so the document a customer files for tax is the one that
was issued. ``Invoice.pdf_path`` is its storage key, ``pdf_sha256`` its ETag.

An archive is a zip of stored PDFs plus an ``invoices.csv`` index, streamed as it
is built and kept in storage (``archives/``) for a day, so asking again, on any
node, streams the stored zip.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
import tempfile
import threading
import zipfile
from collections import OrderedDict, defaultdict
from datetime import datetime, timedelta, timezone
from typing import Iterable, Iterator

from engine import db, money
from engine.db import utcnow
from engine.models import Contact, Customer, Site, User
from engine.storage import Opened
from plugins.billing.models import Invoice, InvoiceLine, InvoiceTaxLine

log = logging.getLogger("portico.billing")

PDF = "application/pdf"
ZIP = "application/zip"
#: The most invoices one archive may hold (a decade of monthly bills, many times over).
ARCHIVE_LIMIT = 500
#: Stored archives are a cache of what was asked for recently; older ones are deleted.
ARCHIVE_KEEP = timedelta(days=1)
#: Bumped whenever the archive's layout changes, so no stored archive of the old layout is served.
ARCHIVE_FORMAT = "1"
ZIP_EPOCH = datetime(1980, 1, 1, tzinfo=timezone.utc)


class MissingFile(LookupError):
    """A document the database says is stored is not in the storage (lost, or not shared)."""


# -- rendering ----------------------------------------------------------------------------


class _Renderer(threading.local):
    """WeasyPrint with what documents can share (one per thread): the font configuration
    and the parsed stylesheets.

    PERF: a fresh ``FontConfiguration`` per document (WeasyPrint's default) loads
    fontconfig and starts Pango's font caches cold: that alone was a third of a render.
    The template's ``<style>`` is the same for every invoice, so it is parsed once and
    handed to WeasyPrint already parsed (~6% of a render's CPU time).
    """

    font_config = None
    sheets: OrderedDict | None = None

    def pdf(self, html: str, base_url: str) -> bytes:
        import weasyprint  # heavy: imported only where PDFs are made

        if self.font_config is None:
            from weasyprint.text.fonts import FontConfiguration

            self.font_config = FontConfiguration()
        html, sheets = self._take_styles(html, base_url)
        return weasyprint.HTML(string=html, base_url=base_url).write_pdf(
            font_config=self.font_config, stylesheets=sheets
        )

    def _take_styles(self, html: str, base_url: str) -> tuple[str, list]:
        """The HTML without its ``<style>`` blocks, and those parsed (cached by their text).

        Only where that keeps the cascade: plain ``<style>`` blocks are the document's only
        CSS (no ``<link>``ed sheet, no ``media`` on a block) and use no rule that is bound to
        one document (``@counter-style``, ``@import``, ``@layer``). Otherwise WeasyPrint
        parses the document as it is.
        """
        blocks = _STYLE.findall(html)
        if not blocks or _NOT_SHARED.search(html):
            return html, []
        import weasyprint

        if self.sheets is None:
            self.sheets = OrderedDict()
        parsed = []
        for text in blocks:
            key = (text, base_url)
            sheet = self.sheets.get(key)
            if sheet is None:
                sheet = weasyprint.CSS(string=text, base_url=base_url, font_config=self.font_config)
                self.sheets[key] = sheet
                if len(self.sheets) > SHEETS_KEPT:  # a theme whose CSS varies per invoice
                    self.sheets.popitem(last=False)
            else:
                self.sheets.move_to_end(key)
            parsed.append(sheet)
        return _STYLE.sub("", html), parsed


#: A plain ``<style>`` block (its text is group 1).
_STYLE = re.compile(r"<style>(.*?)</style>", re.S | re.I)
#: What makes the document's CSS its own: then it is left in place (see ``_take_styles``).
_NOT_SHARED = re.compile(
    r"<link\b[^>]*stylesheet|<style\s[^>]*>|@(?:counter-style|import|layer)\b", re.I
)
#: Parsed stylesheets kept per thread (the template's, in a few languages and themes).
SHEETS_KEPT = 16


RENDERER = _Renderer()


def pdf_key(invoice: Invoice) -> str:
    # A pushed invoice changed before it was paid is a new document: a new key (INT-4).
    revised = f"-r{invoice.revision}" if invoice.revision else ""
    return f"invoices/{invoice.customer_id}/{invoice.number}{revised}.pdf"


def _documents(app, invoices: list[Invoice]) -> Iterator[tuple[Invoice, dict]]:
    """Each invoice with what its template needs, read for the whole batch in five queries."""
    ids = [i.id for i in invoices]
    customer_ids = sorted({i.customer_id for i in invoices})
    lines, tax_lines = defaultdict(list), defaultdict(list)
    for line in (
        InvoiceLine.select()
        .where(InvoiceLine.invoice.in_(ids))
        .order_by(InvoiceLine.invoice, InvoiceLine.position)
    ):
        lines[line.invoice_id].append(line)
    for tax in (
        InvoiceTaxLine.select().where(InvoiceTaxLine.invoice.in_(ids)).order_by(InvoiceTaxLine.id)
    ):
        tax_lines[tax.invoice_id].append(tax)
    customers = {c.id: c for c in Customer.select().where(Customer.id.in_(customer_ids))}
    sites: dict[int, Site] = {}
    for site in (
        Site.select().where(Site.customer.in_(customer_ids)).order_by(Site.customer, Site.id)
    ):
        sites.setdefault(site.customer_id, site)
    # The language of the customer's first login (the primary contact's), as notices use.
    locales: dict[int, str] = {}
    for customer_id, locale in (
        User.select(Contact.customer, User.locale)
        .join(Contact)
        .where(Contact.customer.in_(customer_ids) & User.is_active)
        .order_by(Contact.customer, Contact.is_primary.desc(), User.id)
        .tuples()
    ):
        locales.setdefault(customer_id, locale)
    seller = app.settings.plugin("billing")
    for invoice in invoices:
        yield (
            invoice,
            dict(
                locale=locales.get(invoice.customer_id) or app.settings.default_locale,
                invoice=invoice,
                lines=lines[invoice.id],
                tax_lines=tax_lines[invoice.id],
                customer=customers[invoice.customer_id],
                site=sites.get(invoice.customer_id),
                seller=seller,
            ),
        )


def _render(app, values: dict) -> bytes:
    values = dict(values)
    html = app.theme.render_plain(
        "billing/invoice_pdf.html", values.pop("locale"), app.settings.default_timezone, **values
    )
    return RENDERER.pdf(html, str(app.settings.data_path))


def render_pdf(app, invoice: Invoice) -> bytes:
    """The invoice as PDF bytes, from the theme's template (nothing is stored)."""
    [(_, values)] = _documents(app, [invoice])
    return _render(app, values)


def store_pdfs(app, invoice_ids: Iterable[int]) -> tuple[list[int], list[tuple[int, str]]]:
    """Render and store the PDFs of the invoices that have none yet (a bill run's batch).

    Returns (the ids stored now, [(id, error)] of those that failed). Safe to run
    twice at once: the storage keeps the first file written under a key, and the
    invoice records the digest of the file actually stored.
    """
    ids = list(invoice_ids)
    todo = (
        list(
            Invoice.select()
            .where(Invoice.id.in_(ids) & (Invoice.pdf_path == ""))
            .order_by(Invoice.id)
        )
        if ids
        else []
    )
    done: list[tuple[int, str, str]] = []
    failed: list[tuple[int, str]] = []
    for invoice, values in _documents(app, todo) if todo else ():
        key = pdf_key(invoice)
        try:
            data = _render(app, values)
            if not app.storage.put(key, data, PDF):
                data = app.storage.read(key) or b""  # stored meanwhile: that file is the one
            done.append((invoice.id, key, hashlib.sha256(data).hexdigest()))
        except Exception as exc:  # one bad invoice must not stop a bill run
            log.exception("invoice %s: the PDF could not be rendered and stored", invoice.number)
            failed.append((invoice.id, f"{type(exc).__name__}: {exc}"[:300]))
    if done:
        now = utcnow()
        with db.database.atomic():  # one commit for the batch
            for invoice_id, key, digest in done:
                (
                    Invoice.update(pdf_path=key, pdf_sha256=digest, pdf_rendered_at=now)
                    .where((Invoice.id == invoice_id) & (Invoice.pdf_path == ""))
                    .execute()
                )
    return [d[0] for d in done], failed


def store_pdf(app, invoice_id: int) -> Invoice:
    """Render and store one invoice's PDF unless it has one; the invoice as it now is."""
    _, failed = store_pdfs(app, [invoice_id])
    if failed:
        raise RuntimeError(f"invoice {invoice_id}: {failed[0][1]}")
    return Invoice.get_by_id(invoice_id)


def open_pdf(app, invoice: Invoice) -> Opened:
    """The stored PDF to stream (stored now, once, if the background render has not run yet)."""
    if not invoice.pdf_path:
        invoice = store_pdf(app, invoice.id)
    opened = app.storage.open(invoice.pdf_path)
    if opened is None and _adopt_legacy(app, invoice.pdf_path):
        opened = app.storage.open(invoice.pdf_path)
    if opened is None:
        log.error(
            "invoice %s: its PDF %s is missing from the storage (%s)",
            invoice.number,
            invoice.pdf_path,
            app.storage.describe(),
        )
        raise MissingFile(invoice.pdf_path)
    return opened


def _adopt_legacy(app, key: str) -> bool:
    """Portico 0.1.0 kept PDFs in ``<data_dir>/invoices/``: move one found there into storage."""
    legacy = app.settings.data_path / key
    if not key.startswith("invoices/") or not legacy.is_file():
        return False
    app.storage.put(key, legacy.read_bytes(), PDF)
    return True


def pdf_bytes(app, invoice: Invoice) -> bytes:
    """The stored PDF's bytes."""
    return open_pdf(app, invoice).read()


def download_name(invoice: Invoice) -> str:
    return f"{invoice.number}.pdf"


def pending(since=None, until=None):
    """Issued invoices whose PDF is not stored yet (a bill run's work), oldest first."""
    query = Invoice.select(Invoice.id).where(Invoice.pdf_path == "")
    if since is not None:
        query = query.where(Invoice.issued_at >= since)
    if until is not None:
        query = query.where(Invoice.issued_at < until)
    return query.order_by(Invoice.id)


# -- the archive (BILL-7) --------------------------------------------------------------------


class _Chunks(io.RawIOBase):
    """A write-only, unseekable file that hands out what was written (zipfile streams into it)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


class Archive:
    """A customer's archive of some invoices: its storage key and ETag, known before it is built.

    The zip is a function of the invoices' stored PDFs and the index's columns, so the
    digest of those names it: the same selection, unchanged, is the same stored file.
    """

    def __init__(self, app, customer_id: int, invoices: list[Invoice]):
        missing = [i.id for i in invoices if not i.pdf_path]
        if missing:  # rendered now, once; the archive holds what is stored
            store_pdfs(app, missing)
            fresh = {i.id: i for i in Invoice.select().where(Invoice.id.in_(missing))}
            invoices = [fresh.get(i.id, i) for i in invoices]
        self.app = app
        self.invoices = invoices
        digest = hashlib.sha256(ARCHIVE_FORMAT.encode())
        for row in map(_index_row, invoices):
            digest.update(repr(row).encode())
        for invoice in invoices:
            digest.update(invoice.pdf_sha256.encode())
        self.etag = digest.hexdigest()[:32]
        self.key = f"archives/{customer_id}/{self.etag}.zip"

    def open(self) -> Opened | None:
        """The stored zip, if this archive was built before."""
        return self.app.storage.open(self.key)

    def stream(self) -> Iterator[bytes]:
        """Build the zip as it is sent, and store it once the last byte is out."""
        sink = _Chunks()
        copy = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
        index = io.StringIO()
        writer = csv.writer(index)
        writer.writerow(
            [
                "number",
                "issued",
                "due",
                "currency",
                "subtotal",
                "tax",
                "total",
                "paid",
                "status",
                "file",
            ]
        )
        try:
            with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for invoice in self.invoices:
                    archive.writestr(
                        _info(download_name(invoice), invoice), pdf_bytes(self.app, invoice)
                    )
                    writer.writerow(_index_row(invoice))
                    chunk = sink.take()
                    copy.write(chunk)
                    yield chunk
                last = max(self.invoices, key=lambda i: i.issued_at)
                archive.writestr(_info("invoices.csv", last), index.getvalue().encode("utf-8"))
            chunk = sink.take()
            copy.write(chunk)
            copy.seek(0)
            try:
                self.app.storage.put(self.key, copy, ZIP)
            except Exception:  # the customer has the zip; the next request builds it again
                log.exception("archive %s could not be stored", self.key)
            yield chunk
        finally:
            copy.close()


def _index_row(invoice: Invoice) -> list[str]:
    return [
        invoice.number,
        invoice.issued_at.date().isoformat(),
        invoice.due_at.date().isoformat(),
        invoice.currency,
        money.plain(invoice.subtotal, invoice.currency),
        money.plain(invoice.tax_total, invoice.currency),
        money.plain(invoice.total, invoice.currency),
        money.plain(invoice.amount_paid, invoice.currency),
        invoice.status,
        download_name(invoice),
    ]


def _info(name: str, invoice: Invoice) -> zipfile.ZipInfo:
    # A zip cannot date a file before 1980 (history imported from long ago).
    when = max(invoice.issued_at, ZIP_EPOCH)
    info = zipfile.ZipInfo(name, date_time=when.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def archive_name(invoices: list[Invoice]) -> str:
    if not invoices:
        return "invoices.zip"
    first = min(i.issued_at for i in invoices).date().isoformat()
    last = max(i.issued_at for i in invoices).date().isoformat()
    return f"invoices-{first}-to-{last}.zip"


def prune_archives(app, now=None) -> int:
    """Delete stored archives older than ``ARCHIVE_KEEP``; returns how many."""
    cutoff = (now or utcnow()) - ARCHIVE_KEEP
    old = [f.key for f in app.storage.keys("archives/") if f.modified < cutoff]
    return sum(app.storage.delete(key) for key in old)
