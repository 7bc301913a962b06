"""``portico import KIND FILE`` and ``portico export KIND`` (INT-5): see ``bulk``."""

from __future__ import annotations

import contextlib
import sys

import click

from plugins.operator.bulk import FORMATS


def import_command(app_factory) -> click.Command:
    from plugins.operator.bulk import KINDS

    @click.command("import")
    @click.argument("kind", type=click.Choice(sorted(KINDS)))
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    @click.option("--format", "fmt", type=click.Choice(FORMATS), help="default: by extension")
    @click.option(
        "--dry-run", is_flag=True, help="Check every row against the rules; write nothing."
    )
    @click.option(
        "--all-or-nothing", is_flag=True, help="One transaction: nothing is written on any error."
    )
    @click.option(
        "--batch-size",
        type=click.IntRange(1, 5000),
        default=500,
        show_default=True,
        help="Rows per transaction.",
    )
    @click.option(
        "--restart", is_flag=True, help="Ignore the checkpoint of an interrupted run of this file."
    )
    def import_(kind, path, fmt, dry_run, all_or_nothing, batch_size, restart):
        """Create or update KIND (customers, contacts, sites, services, products, buckets, usage,
        invoices, ...: see the list above) from a CSV or
        JSON Lines file, by external id, through the operator API's rules.

        Bad rows are listed with their line number and the rest imported; a re-run changes
        nothing, and an interrupted run resumes after its last committed batch. Exits 1 if
        any row failed. See docs/integration.md, "Bulk import and export".
        """
        from engine import db
        from plugins.operator import bulk

        app = app_factory()
        _require_usable(app, kind, bulk.format_of(path, fmt))
        # The bar only on a terminal: a piped or logged run gets the lines and the summary.
        bar = (
            click.progressbar(
                length=bulk.count_records(path), label=f"Importing {kind}", show_pos=True
            )
            if sys.stdout.isatty()
            else contextlib.nullcontext(None)
        )
        with db.connection(), bar as shown:
            report = bulk.import_file(
                app,
                kind,
                path,
                fmt=fmt,
                dry_run=dry_run,
                all_or_nothing=all_or_nothing,
                batch_size=batch_size,
                resume=not restart,
                progress=shown.update if shown is not None else (lambda n: None),
            )
        for error in report.errors[:200]:
            click.echo(str(error), err=True)
        if report.failed > 200:
            click.echo(f"... and {report.failed - 200} more errors", err=True)
        click.echo(report.summary())
        if report.errors:
            sys.exit(1)

    return import_


def export_command(app_factory) -> click.Command:
    from plugins.operator.bulk import KINDS

    exportable = sorted(k for k, v in KINDS.items() if v.model is not None)

    @click.command("export")
    @click.argument("kind", type=click.Choice(exportable))
    @click.option("--format", "fmt", type=click.Choice(FORMATS), help="default: by extension")
    @click.option(
        "--output", "-o", type=click.Path(dir_okay=False, writable=True), help="default: stdout"
    )
    def export(kind, fmt, output):
        """Write every KIND with an external id as CSV or JSON Lines, in the shape
        ``portico import`` takes (importing it again changes nothing)."""
        from engine import db
        from plugins.operator import bulk

        fmt = bulk.format_of(output or "", fmt)
        _require_usable(app_factory(), kind, fmt)
        with db.connection():
            if output:
                with open(output, "w", encoding="utf-8", newline="") as f:
                    count = bulk.export(kind, f, fmt)
                click.echo(f"{count} {kind} written to {output}", err=True)
            else:
                bulk.export(kind, sys.stdout, fmt)

    return export


def _require_usable(app, kind: str, fmt: str) -> None:
    from plugins.operator import bulk

    try:
        bulk.require_usable(app, kind, fmt)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
