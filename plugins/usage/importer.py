"""Bulk import of usage from CSV (USE-7): validate line by line, rate in batches.

Columns (a header line names them; order is free): ``id``, ``service_id`` or
``service_external_id`` (the operator's id of the service, INT-3), ``type``, ``quantity``, ``occurred_at`` and optionally ``destination``,
``international``, ``counterparty``. Valid lines are rated; each invalid line
is reported with its number and field, and rating it is left out.
Re-importing a file changes nothing: event ids apply once.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, TextIO

from marshmallow import ValidationError

from engine import audit
from engine.db import connection
from engine.i18n import N_
from plugins.usage.intake import service_ids
from plugins.usage.rating import UsageIn, rate, unknown_services
from plugins.usage.retention import too_old
from plugins.usage.schemas import UsageEventIn

REQUIRED = ("id", "type", "quantity", "occurred_at")
#: Exactly one of these names the service: Portico's id, or the operator's (INT-3).
SERVICE = ("service_id", "service_external_id")
OPTIONAL = ("destination", "international", "counterparty")
DIGITS = re.compile(r"^-?\d+\Z")
#: NUL, or a byte that was not UTF-8 (read with errors="surrogateescape").
NOT_TEXT = re.compile("[\x00\udc80-\udcff]")


@dataclass
class LineError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@dataclass
class ImportReport:
    lines: int = 0
    rated: int = 0
    duplicates: int = 0
    errors: list[LineError] = field(default_factory=list)


class BadHeader(ValueError):
    pass


def parse_line(raw: dict) -> dict:
    """CSV text to the API's shapes: whole numbers as ints, blank optional cells left out."""
    row = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
    for key in ("quantity", "service_id"):
        if DIGITS.match(row.get(key, "")):
            row[key] = int(row[key])
    return {k: v for k, v in row.items() if v != "" or k in REQUIRED + SERVICE}


def import_csv(
    app,
    stream: TextIO,
    *,
    batch_size: int = 1000,
    dry_run: bool = False,
    progress: Callable[[int], None] = lambda n: None,
) -> ImportReport:
    """Read ``stream``, rate its valid lines in batches; ``progress(n)`` after each n lines."""
    reader = csv.DictReader(stream)
    header = [h.strip() for h in (reader.fieldnames or [])]
    named = sum(c in header for c in SERVICE)
    service = (
        []
        if named == 1
        else ["service_id"]
        if not named
        else ["only one of " + " and ".join(SERVICE)]
    )
    missing = (
        [c for c in REQUIRED[:1] if c not in header]
        + service
        + [c for c in REQUIRED[1:] if c not in header]
    )
    unknown = [c for c in header if c not in REQUIRED + SERVICE + OPTIONAL]
    if missing or unknown:
        raise BadHeader(
            "the header line must name the columns "
            f"{', '.join(REQUIRED)}, {' or '.join(SERVICE)} "
            f"(optional: {', '.join(OPTIONAL)}); "
            + (f"missing: {', '.join(missing)}" if missing else f"unknown: {', '.join(unknown)}")
        )
    report = ImportReport()
    schema = UsageEventIn()
    pending: list[tuple[int, dict]] = []
    read = 0  # lines read since the last progress report
    with connection():
        for number, raw in _records(reader, report):
            report.lines += 1
            read += 1
            row = parse_line(raw)
            not_text = [k for k, v in row.items() if isinstance(v, str) and NOT_TEXT.search(v)]
            try:
                if not_text:
                    raise ValidationError(
                        {k: [N_("Not text: a NUL or a byte that is not UTF-8.")] for k in not_text}
                    )
                pending.append((number, schema.load(row)))
            except ValidationError as exc:
                report.errors += [
                    LineError(number, f, "; ".join(_flat(m)))
                    for f, m in exc.normalized_messages().items()
                ]
            if len(pending) >= batch_size:
                _flush(app, pending, report, dry_run)
                progress(read)
                pending, read = [], 0
        _flush(app, pending, report, dry_run)
        progress(read)
        if not dry_run:
            audit.record_system(
                app,
                "usage.imported",
                "usage",
                {
                    "lines": report.lines,
                    "rated": report.rated,
                    "duplicates": report.duplicates,
                    "errors": len(report.errors),
                },
            )
    report.errors.sort(key=lambda e: e.line)
    return report


def _records(reader: csv.DictReader, report: ImportReport) -> Iterator[tuple[int, dict]]:
    """(first line number, row) of each record, blank lines skipped; a record the CSV reader
    refuses (e.g. a field over its size limit) is reported and reading goes on."""
    lines = reader.reader  # DictReader.line_num is only updated by its own next()
    last = lines.line_num  # the header's last line
    while True:
        try:
            cells = next(lines)
        except StopIteration:
            return
        except csv.Error as exc:
            report.lines += 1
            report.errors.append(LineError(last + 1, "line", f"Not readable as CSV: {exc}."))
            last = lines.line_num
            continue
        number, last = last + 1, lines.line_num
        if cells:
            names = reader.fieldnames or []  # a record follows a header: never empty here
            yield number, {**dict(zip(names, cells)), None: cells[len(names) :]}


def _flush(app, pending: list[tuple[int, dict]], report: ImportReport, dry_run: bool) -> None:
    external = service_ids(
        {row["service_external_id"] for _, row in pending if "service_external_id" in row}
    )
    unknown = unknown_services({row["service_id"] for _, row in pending if "service_id" in row})
    good = []
    for number, row in pending:
        if "service_external_id" in row:
            external_id = row.pop("service_external_id")
            if external_id not in external:
                report.errors.append(LineError(number, "service_external_id", "No such service."))
                continue
            row["service_id"] = external[external_id]
        elif row["service_id"] in unknown:
            report.errors.append(LineError(number, "service_id", "No such service."))
            continue
        if why := too_old(app, row["occurred_at"]):
            report.errors.append(LineError(number, "occurred_at", why))
            continue
        good.append(UsageIn(**row))
    if dry_run or not good:
        return
    for outcome in rate(app, good):
        if outcome.status == "rated":
            report.rated += 1
        else:
            report.duplicates += 1


def _flat(messages) -> Iterable[str]:
    if isinstance(messages, dict):
        for v in messages.values():
            yield from _flat(v)
    elif isinstance(messages, list):
        for v in messages:
            yield from _flat(v)
    else:
        yield str(messages)
