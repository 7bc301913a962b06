"""The ``portico`` command line: serve, worker, scheduler, migrate, archive, reseal, plugins,
check, and plugin commands."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from engine.plugins import PluginError
from engine.settings import SettingsError, load_settings

if TYPE_CHECKING:
    from engine.app import Portico


class State:
    """What the commands share: the config path, overrides, and the app once built."""

    def __init__(self, config: str | None):
        self.config = config
        self.overrides: dict = {}
        self._app: Portico | None = None

    def settings(self, serving: bool = True):
        return load_settings(self.config, overrides=self.overrides, serving=serving)

    def app(self, component: str = "cli"):
        """The app, built once; logging and error reporting set up for ``component``."""
        if self._app is None:
            from engine.app import create_app
            from engine.observe import logs, reporting

            try:
                settings = self.settings()
                logs.configure(settings.logging.format, settings.logging.level)
                reporting.init(settings, component)
                self._app = create_app(settings)
            except (SettingsError, PluginError) as exc:
                raise click.ClickException(str(exc)) from None
        return self._app


class PorticoCLI(click.Group):
    """Adds the commands of enabled plugins (``register_commands``) after the built-ins."""

    def _with_plugins(self, ctx) -> click.Group:
        if "plugin_group" not in ctx.meta:
            group = click.Group()
            try:
                from engine.plugins import load_plugins

                settings = load_settings(ctx.params.get("config"))
                plugins = load_plugins(settings)
                if ctx.obj is None:
                    ctx.obj = State(ctx.params.get("config"))
                state = ctx.obj
                plugins.hook.register_commands(cli=group, app_factory=state.app)
            except (SettingsError, PluginError):
                pass  # `portico check` reports the problem; built-in commands still work
            ctx.meta["plugin_group"] = group
        return ctx.meta["plugin_group"]

    def invoke(self, ctx):
        """An unreachable database or broker is one line and exit 1, not a traceback (OPS-3)."""
        try:
            return super().invoke(ctx)
        except Exception as exc:
            from engine import faults

            if not faults.is_unreachable(exc):
                raise
            raise click.ClickException(_unreachable(ctx.obj, exc)) from None

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self._with_plugins(ctx).commands))

    def get_command(self, ctx, name):
        return super().get_command(ctx, name) or self._with_plugins(ctx).commands.get(name)


def _unreachable(state: State | None, exc: Exception) -> str:
    """Which service did not answer, where (password masked), and why."""
    import peewee
    from engine import faults

    try:
        settings = state.settings() if state is not None else None
    except SettingsError:
        settings = None
    if settings is None:
        return f"a service is unreachable: {faults.reason(exc)}"
    if isinstance(exc, (peewee.OperationalError, peewee.InterfaceError)):
        return faults.describe("database", settings.database_url, exc)
    return faults.describe("broker", settings.broker_url, exc)


@click.group(cls=PorticoCLI)
@click.option(
    "--config",
    envvar="PORTICO_CONFIG",
    type=click.Path(dir_okay=False),
    help="portico.toml to read (default: $PORTICO_CONFIG).",
)
@click.pass_context
def cli(ctx, config):
    """Portico: the self-service portal engine."""
    from engine.observe import logs

    logs.configure()  # text until the settings say otherwise (State.app)
    ctx.obj = State(config)


@cli.command()
@click.option("--demo", is_flag=True, help="Embedded defaults, migrated and seeded with demo data.")
@click.option("--host", default=None, help="Address to bind (default: [web] host).")
@click.option("--port", type=int, default=None, help="Port (default: [web] port).")
@click.option("--workers", type=int, default=None, help="Web processes (default: [web] workers).")
@click.pass_obj
def serve(state: State, demo, host, port, workers):
    """Run the web portal with gunicorn."""
    from engine.serve import metrics_folder

    metrics_folder()  # before prometheus_client is imported: gunicorn's workers share it

    from engine import migrations
    from engine.demo import seed_demo
    from engine.serve import Gunicorn, demo_hooks, gunicorn_options, spawn_scheduler

    started = time.monotonic()
    if demo:
        # As settings, so the demo's links (base_url) and its scheduler process follow them.
        if host:
            os.environ["PORTICO_WEB_HOST"] = host
        if port:
            os.environ["PORTICO_WEB_PORT"] = str(port)
        os.environ["PORTICO_DEMO"] = "true"
        os.environ.setdefault("PORTICO_DATA_DIR", str(Path("var").resolve()))
        state.overrides.update(demo=True)
    app = state.app("web")
    settings = app.settings
    options = gunicorn_options(settings, host, port, workers)
    if demo or settings.demo:
        migrations.migrate(app)
        created = seed_demo(app)
        options.update(demo_hooks(app))
        scheduler = spawn_scheduler(dict(os.environ))
        options["on_exit"] = lambda server: scheduler.terminate()
        _print_demo(settings, options["bind"], created)
    else:
        try:
            pending = migrations.pending(app)
        except Exception as exc:
            from engine import faults

            if not faults.is_unreachable(exc):
                raise
            # OPS-3: serve anyway; requests answer 503 until the database is back.
            click.echo(
                f"warning: {_unreachable(state, exc)}; serving 503 until it answers "
                "(pending migrations not checked)",
                err=True,
            )
            pending = []
        if pending:
            raise click.ClickException(
                f"{len(pending)} migrations pending "
                f"({', '.join(pending[:3])}...): run `portico migrate`"
            )
        options["post_fork"] = lambda server, worker: app.database.close_all()
    app.database.close_all()
    options["when_ready"] = lambda server: click.echo(
        f"ready in {time.monotonic() - started:.1f}s", err=True
    )
    Gunicorn(app, options).run()


def _print_demo(settings, bind: str, created: dict | None) -> None:
    host, _, port = bind.rpartition(":")
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"
    click.echo(f"\n  Portico demo: {url}")
    click.echo(f"  Data: {settings.data_path}   Mail: {settings.data_path / 'mail'}")
    if created:
        click.echo(f"  Demo password for every login: {created.get('password')}")
        for kind, email in created.get("logins", []):
            click.echo(f"    {kind:9} {email}")
    else:
        click.echo(
            "  Demo data already present (PORTICO_DEMO_PASSWORD or the password printed "
            "at first start)."
        )
    click.echo("")


@cli.command()
@click.option("--threads", type=int, default=2, show_default=True)
@click.pass_obj
def worker(state: State, threads):
    """Run background tasks (dramatiq) and relay the outbox."""
    # One process: its own registry, served on [metrics] worker_bind (docs/monitoring.md).
    # Before prometheus_client is imported, which reads the variable once.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from engine.serve import run_worker

    run_worker(state.app("worker"), threads=threads)


@cli.command()
@click.pass_obj
def scheduler(state: State):
    """Run the periodic job scheduler (periodiq). Run one per deployment."""
    from engine.serve import run_scheduler

    sys.exit(run_scheduler(state.app("scheduler")))


@cli.command()
@click.pass_obj
def migrate(state: State):
    """Apply pending schema migrations of every enabled plugin."""
    from engine import migrations

    applied = migrations.migrate(state.app())
    for line in applied:
        click.echo(f"applied {line}")
    click.echo(f"{len(applied)} migrations applied" if applied else "database is up to date")


@cli.command()
@click.option(
    "--only",
    multiple=True,
    metavar="NAME",
    help="Only this table (repeat for more): audit_events, usage_events, ...",
)
@click.option("--dry-run", is_flag=True, help="Count what would be archived; change nothing.")
@click.option(
    "--max-batches",
    type=int,
    default=None,
    help="Stop each table after this many files (the rest waits for the next run).",
)
@click.pass_obj
def archive(state: State, only, dry_run, max_batches):
    """Move rows older than [retention] to compressed files in storage, then delete them (OPS-7).

    Safe to interrupt and to repeat: each row goes into exactly one file and is deleted only
    once that file is stored; the next run finishes what a cut-short run left. The nightly
    task does the same: see docs/operations.md, Retention and archival.
    """
    from engine import retention

    app = state.app()
    tables = retention.archives(app)
    unknown = set(only) - {a.name for a in tables}
    if unknown:
        raise click.ClickException(
            f"--only {', '.join(sorted(unknown))}: no such archive "
            f"(one of: {', '.join(a.name for a in tables)})"
        )
    chosen = [a for a in tables if not only or a.name in only]
    if dry_run:
        for a in chosen:
            days = a.days(app)
            click.echo(
                f"{a.name}: {retention.count_old(app, a)} rows older than {days} days"
                if days
                else f"{a.name}: kept forever"
            )
        return
    for result in retention.run(app, only=[a.name for a in chosen], max_batches=max_batches):
        if result.cutoff is None:
            click.echo(
                f"{result.name}: kept forever"
                + (f" ({result.resumed} interrupted batches finished)" if result.resumed else "")
            )
            continue
        line = (
            f"{result.name}: {result.rows} rows older than {result.cutoff:%Y-%m-%d %H:%M} "
            f"UTC archived in {result.files} files"
        )
        if result.resumed:
            line += f", {result.resumed} interrupted batches finished"
        if result.busy:
            line += "; another run is archiving this table"
        click.echo(line)


@cli.command()
@click.pass_obj
def reseal(state: State):
    """Seal stored secrets (2FA seeds) under the first of secret_keys, before an old key is
    taken out of the list (SEC-6)."""
    from engine import db
    from engine.security import reseal_stored

    app = state.app()
    with db.connection():
        resealed, unreadable = reseal_stored(app)
    click.echo(f"{resealed} sealed values moved to the first secret key")
    if unreadable:
        raise click.ClickException(
            f"{unreadable} sealed values open under none of secret_keys: their key was "
            "removed; put it back, or those users set up two-step sign-in again"
        )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def plugins(state: State, as_json):
    """List installed plugins: name, version, enabled, hooks."""
    from engine.plugins import load_plugins

    try:
        found = load_plugins(state.settings(serving=False))  # lists; signs nothing
    except (SettingsError, PluginError) as exc:
        raise click.ClickException(str(exc)) from None
    rows: list[dict[str, Any]] = [
        {
            "name": i.name,
            "version": i.version,
            "source": i.source,
            "enabled": i.enabled,
            "hooks": found.hooks_of(i.name),
        }
        for i in found.info.values()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'name':16} {'version':9} {'enabled':8} hooks")
    for r in rows:
        click.echo(
            f"{r['name']:16} {r['version']:9} {'yes' if r['enabled'] else 'no':8} "
            f"{', '.join(r['hooks'])}"
        )


@cli.group()
def plugin():
    """Write a partner plugin: see "Start a plugin" in docs/plugins.md."""


@plugin.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "parent",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to create the plugin's folder (named NAME) in.",
)
def plugin_new(name, parent):
    """Write a new plugin distribution, NAME (e.g. acme-inventory).

    It installs (pip install -e) and passes its own tests as written: hookimpls, a section
    and its page, an API route in OpenAPI, a task, a migration, tests on engine.testing."""
    from engine.scaffold import ScaffoldError, new_plugin

    try:
        target = new_plugin(name, parent)
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote plugin {name} in {target}\n\n  cd {target}\n  pip install -e .\n  pytest\n")


@cli.command()
@click.option(
    "--reference",
    is_flag=True,
    help="Print the configuration reference (every key of the engine and plugins).",
)
@click.option(
    "--connect",
    is_flag=True,
    help="Also prove the database, broker, SMTP server and payment provider answer.",
)
@click.pass_obj
def check(state: State, reference, connect):
    """Validate the configuration and print it, secrets redacted (OPS-2)."""
    from engine.app import create_app
    from engine.plugins import load_plugins
    from engine.settings import reference as settings_reference
    from engine.theming import ThemeError

    try:
        settings = state.settings()
        found = load_plugins(settings)
        if reference:
            click.echo(settings_reference(dict(found.collect("register_settings"))), nl=False)
            return
        # Building the app runs every start-up check (theme, storage, providers, actors)
        # without connecting to anything.
        from engine.observe import reporting

        reporting.check(settings)  # a Sentry DSN without sentry-sdk
        portico_log = logging.getLogger("portico")
        level = portico_log.level
        portico_log.setLevel(logging.ERROR)  # the app logs the warnings printed below
        try:
            app = create_app(settings, plugins=found)
        finally:
            portico_log.setLevel(level)
    except (SettingsError, PluginError, ThemeError, ValueError) as exc:
        click.echo(f"configuration error:\n{exc}", err=True)
        sys.exit(1)
    for warning in settings.warnings():
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"# configuration OK ({settings.source or 'defaults and environment'})")
    click.echo(json.dumps(settings.redacted(), indent=2, default=str))
    if connect:
        from engine.checks import connect as connect_all

        failed = 0
        for name, problem in connect_all(app):
            click.echo(f"{'FAIL' if problem else 'ok':4}  {problem or name}", err=bool(problem))
            failed += bool(problem)
        app.database.close_all()
        if failed:
            sys.exit(1)


@cli.group()
def storage():
    """Shared storage of generated files (invoice PDFs, archives): see docs/storage.md."""


@storage.command("copy")
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Choice(["local", "database", "s3"]),
    help="The backend to copy from ([storage] settings say where it is).",
)
@click.option(
    "--from-path",
    type=click.Path(file_okay=False),
    help="local: the folder to copy from (default: [storage] path).",
)
@click.option(
    "--prefix",
    "prefixes",
    multiple=True,
    help="Only keys starting with this (repeat for more), e.g. invoices/.",
)
@click.pass_obj
def storage_copy(state: State, source, from_path, prefixes):
    """Copy every stored file into the configured storage; files already there stay as they are.

    Safe to repeat and to run while the portal serves: switch [storage] backend, copy from
    the old one, and the PDFs issued so far are there (see docs/storage.md).
    """
    from engine import db
    from engine.storage import copy, open_storage

    app = state.app()
    origin = open_storage(app.settings, backend=source, path=from_path)
    if origin.describe() == app.storage.describe():
        raise click.ClickException(
            f"--from {source} is the same storage as [storage] "
            f"({origin.describe()}): nothing to copy"
        )
    click.echo(f"copying from {origin.describe()} to {app.storage.describe()}", err=True)
    copied = present = 0
    with db.connection():
        for prefix in prefixes or [""]:
            done = copy(origin, app.storage, prefix)
            copied, present = copied + done[0], present + done[1]
    click.echo(f"{copied} copied, {present} already there")


def main() -> None:
    cli(prog_name="portico")


if __name__ == "__main__":
    main()
