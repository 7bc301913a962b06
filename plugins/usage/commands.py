"""``portico usage import FILE.csv``: bulk usage import with a progress bar and a per-line report."""

from __future__ import annotations

import csv
import sys

import click


def usage_group(app_factory) -> click.Group:
    @click.group("usage")
    def usage():
        """Usage and balances."""

    @usage.command("import")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, allow_dash=False))
    @click.option(
        "--batch-size",
        type=click.IntRange(1, 10000),
        default=1000,
        show_default=True,
        help="Events rated per transaction.",
    )
    @click.option("--dry-run", is_flag=True, help="Check every line; rate nothing.")
    @click.option(
        "--errors",
        "errors_path",
        type=click.Path(dir_okay=False, writable=True),
        help="Also write the per-line errors to this CSV file.",
    )
    def import_command(path, batch_size, dry_run, errors_path):
        """Rate the usage events in a CSV file (see docs/usage.md for the columns).

        Valid lines are rated, once per event id (a re-import changes nothing);
        invalid lines are listed with their line number. Exits 1 if any line failed.
        """
        from plugins.usage.importer import BadHeader, import_csv

        app = app_factory()
        # Bytes that are not UTF-8 become a per-line error, not a crash (see importer.NOT_TEXT).
        text = {"encoding": "utf-8-sig", "errors": "surrogateescape", "newline": ""}
        with open(path, **text) as f:
            total = max(0, sum(1 for _ in f) - 1)
        with (
            open(path, **text) as f,
            click.progressbar(
                length=total, label="Rating usage", file=sys.stderr, show_pos=True
            ) as bar,
        ):
            try:
                report = import_csv(
                    app, f, batch_size=batch_size, dry_run=dry_run, progress=bar.update
                )
            except BadHeader as exc:
                raise click.ClickException(str(exc)) from None
        for error in report.errors[:100]:
            click.echo(str(error), err=True)
        if len(report.errors) > 100:
            click.echo(f"... and {len(report.errors) - 100} more errors", err=True)
        if errors_path:
            with open(errors_path, "w", newline="", encoding="utf-8") as out:
                writer = csv.writer(out)
                writer.writerow(["line", "field", "message"])
                writer.writerows((e.line, e.field, e.message) for e in report.errors)
        bad = len({e.line for e in report.errors})
        if dry_run:
            click.echo(
                f"{report.lines} lines checked: {report.lines - bad} valid, {bad} with errors"
            )
        else:
            click.echo(
                f"{report.lines} lines: {report.rated} rated, {report.duplicates} "
                f"duplicates, {bad} with errors"
            )
        if report.errors:
            sys.exit(1)

    return usage
