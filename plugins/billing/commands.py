"""``portico billing run``: a bill run, the PDFs of every issued invoice not rendered yet."""

from __future__ import annotations

import os
import sys
from datetime import datetime, time, timedelta, timezone

import click


def billing_group(app_factory) -> click.Group:
    @click.group("billing")
    def billing():
        """Invoices and their documents."""

    @billing.command("run")
    @click.option(
        "--from",
        "since",
        type=click.DateTime(["%Y-%m-%d"]),
        help="Only invoices issued on or after this day (UTC).",
    )
    @click.option(
        "--to",
        "until",
        type=click.DateTime(["%Y-%m-%d"]),
        help="Only invoices issued on or before this day (UTC).",
    )
    @click.option(
        "--processes",
        type=click.IntRange(1, 64),
        default=os.cpu_count() or 1,
        show_default="the CPU count",
        help="Processes rendering at once.",
    )
    @click.option(
        "--batch",
        type=click.IntRange(1, 500),
        default=10,
        show_default=True,
        help="Invoices per batch (one set of queries, one commit).",
    )
    @click.option(
        "--enqueue",
        is_flag=True,
        help="Hand the batches to the workers' bulk queue instead of rendering here.",
    )
    @click.option("--dry-run", is_flag=True, help="Only say how many invoices would be rendered.")
    def run(since, until, processes, batch, enqueue, dry_run):
        """Render and store the PDF of every issued invoice that has none yet (BILL-3).

        Resumable: after an interruption (Ctrl-C lets the running batches finish), run it
        again and it renders only the rest. A PDF is rendered once: an invoice whose PDF
        is stored is never rendered again. Exits 1 if any invoice failed.
        """
        from engine import db
        from plugins.billing import billrun, documents

        app = app_factory()
        start = since and datetime.combine(since.date(), time.min, timezone.utc)
        end = until and datetime.combine(until.date() + timedelta(days=1), time.min, timezone.utc)
        with db.connection():
            ids = [i.id for i in documents.pending(start, end)]
        if dry_run or not ids:
            click.echo(f"{len(ids)} invoices without a stored PDF")
            return
        if enqueue:
            messages = billrun.enqueue(app, ids, batch)
            click.echo(
                f"{len(ids)} invoices handed to the workers in {messages} batches (bulk queue)"
            )
            return
        processes = min(processes, len(billrun.batches(ids, batch)))
        with click.progressbar(
            length=len(ids),
            label="Rendering invoices",
            file=sys.stderr,
            show_pos=True,
            show_eta=True,
        ) as bar:
            summary = billrun.run(app, ids, processes=processes, batch=batch, progress=bar.update)
        for number, error in summary.failed[:100]:
            click.echo(f"{number}: {error}", err=True)
        if len(summary.failed) > 100:
            click.echo(f"... and {len(summary.failed) - 100} more failed", err=True)
        click.echo(
            f"{summary.stored} of {summary.invoices} invoices rendered and stored in "
            f"{summary.seconds:.1f} s ({summary.rate:.1f}/s, {summary.processes} "
            f"processes); {len(summary.failed)} failed"
        )
        if summary.interrupted:
            click.echo("Interrupted: run it again to render the rest.", err=True)
            sys.exit(130)
        if summary.failed:
            sys.exit(1)

    return billing
