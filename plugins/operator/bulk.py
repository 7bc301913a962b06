"""Bulk import and export for the operator's systems (INT-5): CSV and JSON Lines.

Every row goes through the same rules as the operator API: it is validated with the kind's
marshmallow schema and written by the service layer (``engine.upserts``, by external id;
usage through the usage plugin's ``ingest``). So a re-run changes nothing, and an export
imported again answers ``unchanged`` for every row.

Rows are written in batches (one transaction per ``batch_size`` rows) for speed: customers
and services with a few statements for the whole batch (``batched``, same rules), the other
kinds each row in a savepoint; a bad row is reported with its line number and the rest go on. After each
batch a checkpoint (the file's SHA-256 and the last committed line) is written next to the
file, so an interrupted import resumes where it stopped; it is removed when the import ends.

Adding a kind is one entry in ``KINDS``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, TextIO

import peewee
from marshmallow import Schema, ValidationError, fields

from engine import audit
from engine.api import paginate
from engine.context import Context
from engine.db import database, locked_transaction
from engine.errors import Problem
from engine.i18n import N_
from engine.models import Contact, Customer, Product, Service, Site
from plugins.operator import batched, billing, buckets, catalogue, invitations, schemas
from plugins.operator import catalogue_items as items
from engine import upserts as rules

CREATED, UPDATED, UNCHANGED = rules.CREATED, rules.UPDATED, rules.UNCHANGED
FORMATS = ("csv", "jsonl")
#: NUL, or a byte that was not UTF-8 (files are read with errors="surrogateescape").
NOT_TEXT = re.compile("[\x00\udc80-\udcff]")
DIGITS = re.compile(r"^-?\d{1,18}\Z")


@dataclass(frozen=True)
class Kind:
    """What one kind of row is: how a row is checked, written and read back."""

    schema: type[Schema]  # validates one row (without its key)
    #: ``write(ctx, rows)`` for a list of (key, values): one change (created, updated,
    #: unchanged) or one ``Problem`` per row, in order. Called inside the batch transaction.
    write: Callable[[Any, list[tuple[str, dict]]], list[str | Problem]]
    key: str = "external_id"  # the column naming the row; not part of ``schema``
    model: Any = None  # for export: rows paged by id through ``service.changed_since``
    out: type[Schema] | None = None
    #: a ``write`` with a constant number of statements per batch (``batched``), falling
    #: back to ``write`` on a database error; None: ``write`` always.
    batch: Callable[[Any, list[tuple[str, dict]]], list[str | Problem]] | None = None
    plugin: str | None = None  # the plugin whose tables these rows live in, when optional
    formats: tuple[str, ...] = FORMATS  # JSON Lines only for rows with nested lists
    #: for export: what of a row the import must not be told (see ``_invoice_row``)
    export_row: Callable[[dict], dict] | None = None


def require_usable(app, kind_name: str, fmt: str) -> None:
    """A kind whose plugin this deployment has disabled has no tables to read or write; an
    invoice's lines do not fit in a CSV row."""
    kind = KINDS[kind_name]
    if kind.plugin is not None and kind.plugin not in app.plugins.enabled:
        raise ValueError(f"{kind_name}: the {kind.plugin} plugin is disabled in this deployment")
    if fmt not in kind.formats:
        raise ValueError(f"{kind_name}: {fmt} cannot hold these rows; use {kind.formats[0]}")


def upserts(upsert: Callable) -> Callable:
    """A ``write`` for a service-layer upsert: each row in its own savepoint, so one row's
    problem leaves the others in the batch."""

    def write(ctx, rows):
        done: list[str | Problem] = []
        for key, values in rows:
            try:
                done.append(upsert(ctx, key, values).change)
            except Problem as exc:
                done.append(exc)
            except peewee.DatabaseError as exc:  # e.g. a value the database refuses
                done.append(Problem(422, f"The database refused this row: {exc}".strip()))
        return done

    return write


def _usage_kind() -> Kind | None:
    try:
        from plugins.usage.public import UsageEventIn, ingest
    except ImportError:  # pragma: no cover - the usage plugin is optional
        return None

    def write(ctx, rows):
        """One ``ingest`` per batch; the rows it refuses (errors by index) are reported and
        the rest sent again. Rated events are ``created``, already-rated ones ``unchanged``."""
        events = [{**values, "id": key} for key, values in rows]
        done: list[str | Problem | None] = [None] * len(events)
        todo = list(range(len(events)))
        while todo:
            try:
                with database.atomic():
                    result = ingest(ctx, [events[i] for i in todo])
            except Problem as exc:
                by_index = (exc.errors or {}).get("events")
                if not isinstance(by_index, dict) or not by_index:
                    for i in todo:
                        done[i] = exc
                    break
                refused = {todo[int(k)] for k in by_index}
                for k, messages in by_index.items():
                    done[todo[int(k)]] = Problem(
                        422, N_("Some fields are not valid"), errors=messages
                    )
                todo = [i for i in todo if i not in refused]
                continue
            for i, outcome in zip(todo, result["results"]):
                done[i] = CREATED if outcome.status == "rated" else UNCHANGED
            break
        return [d if d is not None else UNCHANGED for d in done]

    return Kind(UsageEventIn, write, key="id", plugin="usage")


#: kind -> how to import (and export) it.
_customers = upserts(rules.upsert_customer)
_services = upserts(rules.upsert_service)
KINDS: dict[str, Kind] = {
    "customers": Kind(
        schemas.OperatorCustomerIn,
        _customers,
        model=Customer,
        out=schemas.OperatorCustomerOut,
        batch=batched.writer(
            Customer, "customer", rules.prepare_customer, batched.customer_lookups, _customers
        ),
    ),
    "contacts": Kind(
        schemas.OperatorContactIn,
        upserts(invitations.upsert_contact),  # portal_access invites, as the API does
        model=Contact,
        out=schemas.OperatorContactOut,
    ),
    "sites": Kind(
        schemas.OperatorSiteIn, upserts(rules.upsert_site), model=Site, out=schemas.OperatorSiteOut
    ),
    "services": Kind(
        schemas.OperatorServiceIn,
        _services,
        model=Service,
        out=schemas.OperatorServiceOut,
        batch=batched.writer(
            Service,
            "service",
            rules.prepare_service,
            batched.service_lookups,
            _services,
            rules.status_hook,
        ),
    ),
    "products": Kind(
        catalogue.OperatorProductIn,
        upserts(catalogue.upsert_product),
        model=Product,
        out=catalogue.OperatorProductOut,
    ),
    "buckets": Kind(
        buckets.OperatorBucketIn,
        upserts(buckets.upsert_bucket),
        model=buckets.Bucket,
        out=buckets.OperatorBucketOut,
        plugin="usage",
    ),
    "topup_products": Kind(
        items.OperatorTopupProductIn,
        upserts(items.upsert_topup_product),
        model=items.TopupProduct,
        out=items.OperatorTopupProductOut,
        plugin="topups",
    ),
    "addon_products": Kind(
        items.OperatorAddonProductIn,
        upserts(items.upsert_addon_product),
        model=items.AddonProduct,
        out=items.OperatorAddonProductOut,
        plugin="addons",
    ),
}
if (usage := _usage_kind()) is not None:
    KINDS["usage"] = usage


def _invoice_row(row: dict) -> dict:
    """A paid invoice is exported without its status: an import makes it paid by importing
    its payments (an invoice cannot be pushed as paid while its money is not recorded)."""
    if row.get("status") == "paid":
        row = {k: v for k, v in row.items() if k != "status"}
    return row


# From the operator's billing system (INT-4): each row as its PUT takes it; exported as an
# import takes them back, so another Portico (or a re-run here) gets the same ledger.
KINDS["invoices"] = Kind(
    billing.OperatorInvoiceIn,
    upserts(billing.by_customer(billing.pushed.upsert_invoice)),
    model=billing.Invoice,
    out=billing.OperatorInvoiceOut,
    plugin="billing",
    formats=("jsonl",),
    export_row=_invoice_row,
)
KINDS["transactions"] = Kind(
    billing.OperatorTransactionIn,
    upserts(billing.by_customer(billing.pushed.upsert_transaction)),
    model=billing.Transaction,
    out=billing.OperatorTransactionOut,
    plugin="billing",
)
KINDS["payments"] = Kind(
    billing.OperatorPaymentIn,
    upserts(billing.by_customer(billing.pushed.record_payment)),
    model=billing.Payment,
    out=billing.OperatorPaymentOut,
    plugin="billing",
)


def format_of(path: str, given: str | None) -> str:
    """``given``, else from the file's extension (.jsonl or .ndjson: JSON Lines; else CSV)."""
    if given:
        return given
    return "jsonl" if path.lower().endswith((".jsonl", ".ndjson", ".json")) else "csv"


# -- reading ------------------------------------------------------------------------------


@dataclass
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class Report:
    kind: str
    file: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    skipped_to: int = 0  # resumed after this line
    seconds: float = 0.0
    dry_run: bool = False
    rolled_back: bool = False

    @property
    def failed(self) -> int:
        return len(self.errors)

    @property
    def rows(self) -> int:
        return self.created + self.updated + self.unchanged + self.failed

    def counts(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
        }

    def summary(self) -> str:
        rate = self.rows / self.seconds if self.seconds else 0.0
        head = "dry run, nothing written: " if self.dry_run else ""
        if self.rolled_back:
            head = "all or nothing: errors, nothing written: "
        resumed = f" (resumed after line {self.skipped_to})" if self.skipped_to else ""
        return (
            f"{head}{self.rows} rows{resumed}: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.failed} failed in {self.seconds:.1f}s "
            f"({rate:.0f} rows/s)"
        )


def records(stream: TextIO, fmt: str) -> Iterator[tuple[int, dict | RowError]]:
    """(line number, raw row) of each record, or (line, error) for one that cannot be read."""
    if fmt == "jsonl":
        for number, text in enumerate(stream, 1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except ValueError as exc:
                yield number, RowError(number, f"Not JSON: {exc}.")
                continue
            if not isinstance(row, dict):
                yield number, RowError(number, "Not a JSON object.")
                continue
            yield number, row
        return
    reader = csv.reader(stream)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return
    last = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field over the reader's size limit
            yield last + 1, RowError(last + 1, f"Not readable as CSV: {exc}.")
            last = reader.line_num
            continue
        number, last = last + 1, reader.line_num
        if not cells:
            continue
        if len(cells) != len(header):
            yield number, RowError(number, f"{len(cells)} cells; the header names {len(header)}.")
            continue
        # A blank cell is a field left out: it keeps its value (or takes its default).
        yield number, {k: v for k, v in zip(header, cells) if v != ""}


def _from_csv(schema: Schema, row: dict) -> dict:
    """CSV cells are text: whole numbers become numbers where the schema wants them (usage's
    quantity is strict), and a list is its items separated by ``|`` (a product's
    ``compatible_plans``: ``PLAN-A/PLAN-B``; an empty cell is left out)."""
    out = dict(row)
    for name, value in row.items():
        f = schema.fields.get(name)
        if isinstance(f, fields.Integer) and isinstance(value, str) and DIGITS.match(value):
            out[name] = int(value)
        elif isinstance(f, fields.List) and isinstance(value, str) and value:
            out[name] = value.split(LIST_SEPARATOR)
    return out


def load(kind: Kind, schema: Schema, row: dict, fmt: str) -> tuple[str, dict]:
    """(key, validated values) of a raw row; ``ValidationError`` if it is not valid."""
    bad = [k for k, v in row.items() if isinstance(v, str) and NOT_TEXT.search(v)]
    if bad:
        raise ValidationError(
            {k: [N_("Not text: a NUL or a byte that is not UTF-8.")] for k in bad}
        )
    row = dict(row)
    if fmt == "csv":
        row = _from_csv(schema, row)
    if kind.key in schema.fields:  # usage: the event id is one of the schema's fields
        values = schema.load(row)
        return values.pop(kind.key), values
    key = row.pop(kind.key, None)
    try:
        schemas.EXTERNAL_ID(key)
    except (ValidationError, TypeError):
        raise ValidationError({kind.key: [N_("Missing or not a valid external id.")]}) from None
    return key, schema.load(row)


def _message(messages: Any) -> str:
    if isinstance(messages, dict):
        return "; ".join(f"{k}: {_message(v)}" for k, v in messages.items())
    if isinstance(messages, list):
        return " ".join(_message(m) for m in messages)
    return str(messages)


def _problem_text(problem: Problem) -> str:
    if problem.errors:
        return _message(problem.errors)
    return str(problem.title)


# -- checkpoints ----------------------------------------------------------------------------


def checksum(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_path(path: str) -> str:
    return path + ".portico-import"


def resume_line(path: str, kind: str, digest: str) -> int:
    """The last committed line of an interrupted import of this very file, or 0."""
    try:
        with open(checkpoint_path(path), encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return 0
    if saved.get("sha256") != digest or saved.get("kind") != kind:
        return 0  # another file (or it changed): start again; the upserts keep it idempotent
    return int(saved.get("line", 0))


def _save_checkpoint(path: str, kind: str, digest: str, line: int) -> None:
    temporary = checkpoint_path(path) + ".tmp"
    try:
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump({"kind": kind, "sha256": digest, "line": line}, f)
        os.replace(temporary, checkpoint_path(path))
    except OSError:
        pass  # a read-only folder: no resume, but a re-run is still idempotent, only slower


# -- importing ------------------------------------------------------------------------------


class _RollBack(Exception):
    pass


def import_file(
    app,
    kind_name: str,
    path: str,
    *,
    fmt: str | None = None,
    dry_run: bool = False,
    all_or_nothing: bool = False,
    batch_size: int = 500,
    resume: bool = True,
    stop_after: int | None = None,
    one_by_one: bool = False,
    progress: Callable[[int], None] = lambda n: None,
) -> Report:
    """Import ``path`` (rows of ``kind_name``); returns the report. ``stop_after`` stops after
    that many rows as if interrupted (for tests); ``one_by_one`` writes each row through the
    service layer's upsert even where the kind has a batched write (to compare the two).
    Call inside ``db.connection()``."""
    kind = KINDS[kind_name]
    write = kind.write if one_by_one or kind.batch is None else kind.batch
    fmt = format_of(path, fmt)
    schema = kind.schema()
    ctx = Context(app=app, user_agent="portico import")
    report = Report(kind_name, os.path.basename(path), dry_run=dry_run)
    digest = checksum(path)
    single = dry_run or all_or_nothing  # one transaction, rolled back on request or error
    skip = resume_line(path, kind_name, digest) if resume and not single else 0
    report.skipped_to = skip
    started = time.perf_counter()
    pending: list[tuple[int, str, dict]] = []
    seen = 0

    def flush(last_line: int) -> None:
        if not pending:
            return
        changes = write(ctx, [(key, values) for _, key, values in pending])
        for (number, _, _), change in zip(pending, changes):
            if isinstance(change, Problem):
                report.errors.append(RowError(number, _problem_text(change)))
            else:
                setattr(report, change, getattr(report, change) + 1)
        progress(len(pending))
        pending.clear()

    def batches(stream) -> None:
        nonlocal seen
        last = 0
        for number, row in records(stream, fmt):
            if number <= skip:
                continue
            if stop_after is not None and seen >= stop_after:
                raise KeyboardInterrupt
            seen += 1
            last = number
            if isinstance(row, RowError):
                report.errors.append(row)
                progress(1)
                continue
            try:
                key, values = load(kind, schema, row, fmt)
            except ValidationError as exc:
                report.errors.append(RowError(number, _message(exc.normalized_messages())))
                progress(1)
                continue
            pending.append((number, key, values))
            if len(pending) >= batch_size:
                if single:
                    flush(number)
                else:
                    with locked_transaction():
                        flush(number)
                    _save_checkpoint(path, kind_name, digest, number)
        if single:
            flush(last)
        else:
            with locked_transaction():
                flush(last)

    text = {"encoding": "utf-8-sig", "errors": "surrogateescape", "newline": ""}
    with open(path, **text) as stream:  # type: ignore[call-overload]
        if single:
            try:
                with locked_transaction():
                    batches(stream)
                    if dry_run or report.errors:
                        raise _RollBack
            except _RollBack:
                report.rolled_back = not dry_run
        else:
            batches(stream)
    report.seconds = time.perf_counter() - started
    report.errors.sort(key=lambda e: e.line)
    if not dry_run:
        with database.atomic():
            audit.record_system(
                app,
                "operator.imported",
                f"import:{kind_name}",
                {
                    "file": report.file,
                    "sha256": digest,
                    "format": fmt,
                    "resumed_after": skip,
                    "all_or_nothing": all_or_nothing,
                    "rolled_back": report.rolled_back,
                    **report.counts(),
                },
            )
        try:
            os.remove(checkpoint_path(path))
        except FileNotFoundError:
            pass
    return report


def count_records(path: str) -> int:
    """Lines in the file (an upper bound of the records, for the progress bar)."""
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


# -- exporting ------------------------------------------------------------------------------


def exported(kind_name: str, page_size: int = 500) -> Iterator[dict]:
    """Each row of the kind with an external id, as an import takes it (its ``key`` and its
    schema's fields), paged by id with the API's cursors."""
    kind = KINDS[kind_name]
    if kind.model is None or kind.out is None:
        raise ValueError(f"{kind_name} cannot be exported")
    wanted = _exported_fields(kind)
    out = kind.out()
    page: dict = {"limit": page_size}
    while True:
        query = rules.changed_since(kind.model).where(kind.model.external_id.is_null(False))
        found = paginate(query, kind.model.id, page, descending=False)
        for row in found["items"]:
            dumped = out.dump(row)
            # A field only the input has (a contact's ``portal_access`` request) is left out.
            values = {kind.key: row.external_id, **{k: dumped[k] for k in wanted if k in dumped}}
            yield kind.export_row(values) if kind.export_row else values
        if not found["next"]:
            return
        page["cursor"] = found["next"]


def _exported_fields(kind: Kind) -> list[str]:
    """The schema's fields an export can fill: not the write-only ones (``portal_access`` is
    an instruction to invite, not a value read back)."""
    assert kind.out is not None
    shown = kind.out().fields
    return [name for name in kind.schema().fields if name in shown]


#: How a CSV cell holds a list of external ids: "/" is the one character they never contain.
LIST_SEPARATOR = "/"


def _csv_cell(value) -> Any:
    """CSV has no null (a blank cell, which an import reads as "left out": it keeps its
    value) and no list (items joined by ``/``)."""
    if value is None:
        return ""
    if isinstance(value, list):
        return LIST_SEPARATOR.join(str(v) for v in value)
    return value


def export(kind_name: str, stream: TextIO, fmt: str) -> int:
    """Write the kind's rows to ``stream``; returns how many."""
    kind = KINDS[kind_name]
    count = 0
    if fmt == "jsonl":
        for row in exported(kind_name):
            stream.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
        return count
    header = [kind.key, *_exported_fields(kind)]
    writer = csv.DictWriter(stream, header, lineterminator="\n")
    writer.writeheader()
    for row in exported(kind_name):
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
        count += 1
    return count
