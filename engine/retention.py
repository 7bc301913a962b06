"""Retention with archival (OPS-7): old rows of high-volume tables go to files, then away.

A plugin names its tables with ``register_archives`` (an ``Archive``); ``[retention]``
says how many days each keeps (0: forever, the default). ``portico archive`` and the
nightly ``archive_old_rows`` task write the rows older than that, oldest id first, in
batches, to gzipped JSON Lines files in the configured storage
(``retention/<name>/<first id>-<last id>.jsonl.gz``, one row per line, columns as in
the table), and delete them. Each row lands in exactly one file and is deleted only
after that file is stored:

1. the batch is recorded as pending (``archive_batch``: its key), committed;
2. the file is stored (``put`` creates a key only once, atomically on every backend);
3. one transaction deletes the ids the file holds and marks the batch done.

A run that died between 1 and 3 is finished by the next one: a stored file has its
ids (read back from the file) deleted; a missing file means nothing was deleted, and
the pending record goes. Two runs at once cannot record the same batch (the key is
unique): the second stops for that table.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Iterator

import peewee
from peewee import BigIntegerField, CharField, IntegerField

from engine import db
from engine.db import BaseModel, UTCDateTimeField, utcnow
from engine.tasks import BULK_QUEUE, task

if TYPE_CHECKING:  # pragma: no cover
    from engine.app import Portico

log = logging.getLogger("portico.retention")
ROOT = "retention"
CHUNK = 500  # ids per DELETE statement


@dataclass(frozen=True)
class Archive:
    """A table whose old rows are archived: ``time`` decides "old"; ``keep`` (optional)
    selects old rows that must stay all the same (e.g. usage of a service's current period)."""

    name: str  # the files' folder, the CLI's --only, messages: "usage_events"
    model: type[BaseModel]
    time: peewee.Field
    days: Callable[[Any], int]  # days to keep, from the app's settings; 0 = forever
    keep: Callable[[], Any] | None = None


class ArchiveBatch(BaseModel):
    """One archive file, recorded before its rows are deleted (see the module's docstring)."""

    name = CharField(max_length=100)
    key = CharField(max_length=400, unique=True)
    first_id = BigIntegerField()
    last_id = BigIntegerField()
    rows = IntegerField(default=0)
    state = CharField(max_length=10, default="pending")  # pending, done
    created_at = UTCDateTimeField(default=utcnow)
    finished_at = UTCDateTimeField(null=True)

    class Meta:
        indexes = ((("name", "state"), False),)  # a run's first question: pending batches?


@dataclass
class Result:
    name: str
    cutoff: datetime | None = None
    rows: int = 0
    files: int = 0
    resumed: int = 0  # batches a previous, interrupted run left, finished now
    busy: bool = False  # another run was archiving this table


def archives(app: Portico) -> list[Archive]:
    """Every enabled plugin's archivable tables."""
    found = app.plugins.unique(
        app.plugins.collect("register_archives", app=app), lambda a: a.name, "archive"
    )
    return [archive for _, archive in found.values()]


def cutoff_of(app: Portico, archive: Archive, now: datetime) -> datetime | None:
    """Rows older than this are archived; None when the table keeps its rows forever."""
    days = archive.days(app)
    return now - timedelta(days=days) if days else None


def run(
    app: Portico,
    *,
    only: list[str] | None = None,
    now: datetime | None = None,
    max_batches: int | None = None,
    progress: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Archive every table's old rows (or ``only`` those named); one Result per table."""
    now = now or utcnow()
    size = app.settings.retention.batch_size
    results = []
    for archive in archives(app):
        if only and archive.name not in only:
            continue
        result = Result(archive.name, cutoff_of(app, archive, now))
        results.append(result)
        with db.connection():
            result.resumed = resume(app, archive, result)
            if result.cutoff is None:
                continue
            batches = 0
            while max_batches is None or batches < max_batches:
                if not archive_batch(app, archive, result, size):
                    break
                batches += 1
                if progress is not None:
                    progress(result)
            if result.rows:
                from engine.audit import record_system

                record_system(
                    app,
                    "retention.archived",
                    archive.name,
                    {
                        "rows": result.rows,
                        "files": result.files,
                        "before": result.cutoff.isoformat(),
                    },
                )
    return results


def _old(archive: Archive, cutoff: datetime) -> Any:
    where = archive.time < cutoff
    return where & ~archive.keep() if archive.keep is not None else where


def count_old(app: Portico, archive: Archive, now: datetime | None = None) -> int:
    """How many rows a run would archive now (``portico archive --dry-run``)."""
    cutoff = cutoff_of(app, archive, now or utcnow())
    if cutoff is None:
        return 0
    with db.connection():
        return int(archive.model.select().where(_old(archive, cutoff)).count())


def old_rows(archive: Archive, cutoff: datetime, size: int) -> list[dict[str, Any]]:
    """The next batch: up to ``size`` rows older than ``cutoff``, lowest id first."""
    model = archive.model
    fields = model._meta.sorted_fields
    query = (
        model.select(*fields)
        .where(_old(archive, cutoff))
        .order_by(model._meta.primary_key)
        .limit(size)
    )
    names = [f.column_name for f in fields]
    return [dict(zip(names, row)) for row in query.tuples()]


def archive_batch(app: Portico, archive: Archive, result: Result, size: int) -> bool:
    """Archive one batch; False when there is nothing (more) to archive or another run is."""
    assert result.cutoff is not None
    rows = old_rows(archive, result.cutoff, size)
    if not rows:
        return False
    pk = archive.model._meta.primary_key.column_name
    first, last = rows[0][pk], rows[-1][pk]
    key = f"{ROOT}/{archive.name}/{first:020d}-{last:020d}.jsonl.gz"
    try:
        with db.database.atomic():
            batch = ArchiveBatch.create(
                name=archive.name, key=key, first_id=first, last_id=last, rows=len(rows)
            )
    except peewee.IntegrityError:
        log.info("%s: another run is archiving %s; leaving it to that run", archive.name, key)
        result.busy = True
        return False
    if not app.storage.put(key, encode(rows), "application/gzip"):
        # Stored by a run that died before its delete: its file, not this batch, is the truth.
        ids = ids_in(app, key)
    else:
        ids = [row[pk] for row in rows]
    result.rows += finish(archive, batch, ids)
    result.files += 1
    return True


def finish(archive: Archive, batch: ArchiveBatch, ids: list[int]) -> int:
    """Delete the archived ids and mark the batch done, in one transaction; rows deleted."""
    model = archive.model
    deleted = 0
    with db.database.atomic():
        for i in range(0, len(ids), CHUNK):
            deleted += (
                model.delete().where(model._meta.primary_key.in_(ids[i : i + CHUNK])).execute()
            )
        (
            ArchiveBatch.update(state="done", rows=len(ids), finished_at=utcnow())
            .where(ArchiveBatch.id == batch.id)
            .execute()
        )
    return deleted


def resume(app: Portico, archive: Archive, result: Result) -> int:
    """Finish the batches an interrupted run left pending; returns how many."""
    done = 0
    for batch in ArchiveBatch.select().where(
        (ArchiveBatch.name == archive.name) & (ArchiveBatch.state == "pending")
    ):
        if app.storage.exists(batch.key):
            result.rows += finish(archive, batch, ids_in(app, batch.key))
            result.files += 1
        else:  # died before the file was stored: nothing was deleted
            ArchiveBatch.delete().where(ArchiveBatch.id == batch.id).execute()
        done += 1
    return done


def encode(rows: list[dict[str, Any]]) -> bytes:
    """Gzipped JSON Lines: one row a line, times in ISO 8601 (UTC)."""
    out = io.BytesIO()
    # mtime=0: the same rows make the same bytes (a re-run's file compares equal).
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        for row in rows:
            gz.write(json.dumps(row, default=_plain, separators=(",", ":")).encode() + b"\n")
    return out.getvalue()


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    raise TypeError(f"cannot archive a {type(value).__name__}")


def read(app: Portico, key: str) -> Iterator[dict[str, Any]]:
    """The rows of an archive file."""
    data = app.storage.read(key)
    if data is None:
        raise FileNotFoundError(key)
    for line in gzip.decompress(data).splitlines():
        yield json.loads(line)


def ids_in(app: Portico, key: str) -> list[int]:
    return [row["id"] for row in read(app, key)]


#: 30 minutes, like the bill run's batches: shorter than ``tasks.redeliver_after`` (an hour by
#: default), so a run still going is never sent again; a run cut short is finished next night.
NIGHTLY = task(periodic="40 3 * * *", queue=BULK_QUEUE, max_retries=3, time_limit=30 * 60 * 1000)


@NIGHTLY  # type: ignore[untyped-decorator]
def archive_old_rows(app: Portico) -> int:
    """Nightly: archive what ``[retention]`` says is old. A run cut short (its time limit, a
    restart) is finished by the next one; returns the rows archived."""
    return sum(r.rows for r in run(app))
