"""A bill run: render and store the PDFs of many issued invoices at once, on several processes.

The work is the invoices whose PDF is not stored yet (``documents.pending``), so
a run that was interrupted is resumed by running it again: it renders only the
rest. Each process builds its own app and renders batches with
``documents.store_pdfs`` (one set of queries per batch, one font configuration
per process). An invoice's PDF is rendered once: the storage keeps the first
file written under its key, and a stored invoice is never selected again.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import time
from dataclasses import dataclass, field
from typing import Callable

from engine import db
from plugins.billing import documents
from plugins.billing.models import Invoice


@dataclass
class Summary:
    """What a bill run did."""

    invoices: int = 0  # selected
    stored: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (number, error)
    seconds: float = 0.0
    processes: int = 1
    interrupted: bool = False

    @property
    def rate(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0


def batches(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def run(
    app,
    ids: list[int],
    *,
    processes: int = 1,
    batch: int = 10,
    progress: Callable[[int], None] | None = None,
) -> Summary:
    """Render and store the PDFs of ``ids`` (those still without one) on ``processes``.

    ``progress(n)`` is called as batches finish. A first Ctrl-C stops handing out
    batches and lets the running ones finish (their PDFs are kept); a second one
    stops at once.
    """
    summary = Summary(invoices=len(ids), processes=processes)
    started = time.perf_counter()
    chunks = batches(ids, batch)
    try:
        if processes == 1:
            with db.connection():
                for chunk in chunks:
                    _count(summary, _store(app, chunk), progress)
        else:
            _run_pool(app, chunks, processes, summary, progress)
    except KeyboardInterrupt:
        summary.interrupted = True
    summary.seconds = time.perf_counter() - started
    if summary.failed:
        with db.connection():
            numbers = dict(
                Invoice.select(Invoice.id, Invoice.number)
                .where(Invoice.id.in_([i for i, _ in summary.failed]))
                .tuples()
            )
        summary.failed = [(numbers.get(i, str(i)), error) for i, error in summary.failed]
    return summary


def _store(app, chunk: list[int]) -> tuple[int, list, int]:
    stored, failed = documents.store_pdfs(app, chunk)
    return len(stored), failed, len(chunk)


def _count(summary: Summary, outcome: tuple, progress) -> None:
    stored, failed, done = outcome
    summary.stored += stored
    summary.failed += failed
    if progress is not None:
        progress(done)


def _run_pool(app, chunks, processes, summary, progress) -> None:
    # NOTE: spawned, not forked: a child starts clean (no inherited database connections,
    # threads or broker sockets) and builds its own app from the settings.
    context = multiprocessing.get_context("spawn")
    app.database.close_all()
    results: queue.Queue = queue.Queue()
    pool = context.Pool(processes, initializer=_start_child, initargs=(app.settings,))
    todo, running = list(reversed(chunks)), 0
    try:
        while todo or running:
            while todo and running < processes * 2:  # a few batches ahead, not the whole run
                pool.apply_async(
                    _child_store, (todo.pop(),), callback=results.put, error_callback=results.put
                )
                running += 1
            outcome = results.get()
            running -= 1
            if isinstance(outcome, BaseException):
                raise outcome
            _count(summary, outcome, progress)
    except KeyboardInterrupt:
        summary.interrupted = True
        try:  # the running batches finish (the children ignore SIGINT); nothing new starts
            for _ in range(running):
                outcome = results.get()
                if not isinstance(outcome, BaseException):
                    _count(summary, outcome, progress)
        except KeyboardInterrupt:
            pool.terminate()
            raise
    finally:
        pool.close()
        pool.join()


_CHILD_APP = None


def _start_child(settings) -> None:
    global _CHILD_APP
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    from engine.app import create_app

    _CHILD_APP = create_app(settings)


def _child_store(chunk: list[int]) -> tuple[int, list, int]:
    with db.connection():
        return _store(_CHILD_APP, chunk)


def enqueue(app, ids: list[int], batch: int = 10) -> int:
    """Hand the batches to the workers (the bulk queue); returns how many messages."""
    chunks = batches(ids, batch)
    with db.connection():
        from plugins.billing import tasks as billing_tasks  # lazily: it imports this module

        with db.database.atomic():
            for chunk in chunks:
                app.tasks.enqueue(billing_tasks.render_invoice_pdfs, chunk)
        app.tasks.relay()
    return len(chunks)
