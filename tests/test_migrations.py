"""Migrations (OPS-5, OPS-8): frozen, per plugin, building exactly what the models describe.

- A fresh database built by every plugin's migrations, one plugin at a time (no template
  copy), has each plugin's tables and nothing else, and matches the models column by column,
  key by key, index by index (``engine.schema``). A model changed without a migration fails it.
- A database of the previous release (``tests/data/upgrade-0.1.0.*.sql.gz``, made by
  ``scripts/make-upgrade-snapshot`` from that release's code, with its demo data) upgrades to
  the same schema, and its rows survive.
- No migration imports a model: history does not change when a model does.
- Nodes that start at once migrate one after the other: every one succeeds, each migration
  runs once.
"""

from __future__ import annotations

import ast
import contextlib
import gzip
import fcntl
import importlib
import multiprocessing
import sqlite3
import sys
from pathlib import Path
from urllib.parse import urlparse

import peewee
import pytest

import jobs_plugin
from engine import db, hookimpl, migrations, schema
from engine.db import BaseModel
from engine.plugins import BUILTIN_PLUGINS
from engine.testing import TEST_ALLOWANCES, Client, ensure_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT / "examples" / "acme-weather"))  # importable even when not installed
import acme_weather  # noqa: E402

PARTNERS = [("acme-weather", acme_weather), ("jobs", jobs_plugin)]
PREVIOUS = "0.1.0"
SNAPSHOTS = Path(__file__).resolve().parent / "data"
#: Columns that a migration since the previous release rewrites or drops on purpose (table ->
#: names): the upgrade test does not compare their old values. A data migration adds its own.
REWRITTEN: dict[str, set[str]] = {
    # 0002_drop_request_key: the engine's idempotency record names the purchase or add-on.
    "topup_purchase": {"request_key"},
    "service_addon": {"request_key"},
}


def tables() -> set[str]:
    return {t for t in db.database.get_tables() if not schema.NOT_MODELS.match(t)}


def history(app) -> list[tuple[str, str]]:
    """Every (plugin, migration) the history tables record, repeats included."""
    with db.connection():
        # A plugin newer than the database has no history table yet.
        return sorted(
            (name, row.name)
            for name, runner in migrations.runners(app)
            if runner.History.table_exists()
            for row in runner.History.select()
        )


@pytest.mark.spec("OPS-8")
def test_each_plugins_migrations_build_its_tables_as_the_models_describe(make_app, schema_drift):
    app = make_app(plugins=PARTNERS, migrate=False)
    assert {name for name, _ in BUILTIN_PLUGINS} <= set(app.plugins.enabled)
    with db.connection():
        assert tables() == set()
        for name, runner in migrations.runners(app):
            before = tables()
            assert runner.up(), f"plugin {name} has no migrations to apply"
            made = tables() - before
            owned = {m._meta.table_name for m in app.models.get(name, [])}
            assert made == owned, (
                f"plugin {name}'s migrations create {sorted(made)}, its models are {sorted(owned)}"
            )
    assert schema_drift(app) == []
    assert migrations.pending(app) == [] and migrations.migrate(app) == []


# Model changes made without a migration, each on a table only tests and the example own. Each
# returns how the difference begins.


def _add_column(monkeypatch):
    from jobs_plugin.models import JobRun

    JobRun._meta.add_field("note", peewee.TextField(default=""))  # the test removes it
    return "table job_run: column note is missing, the models say "


def _nullable(monkeypatch):
    from jobs_plugin.models import JobRun

    monkeypatch.setattr(JobRun.name, "null", True)
    return "table job_run: column name is "


def _type(monkeypatch):
    from jobs_plugin.models import JobRun

    monkeypatch.setattr(JobRun.pid, "field_type", "FLOAT")  # an IntegerField made a FloatField
    return "table job_run: column pid is "


def _index(monkeypatch):
    from jobs_plugin.models import JobRun

    monkeypatch.setattr(JobRun._meta, "indexes", [(("name", "arg"), False)])
    return "table job_run: index ('job_run_name_arg', ('name', 'arg'), False, None) only in the"


def _unique(monkeypatch):
    from jobs_plugin.models import JobRun

    monkeypatch.setattr(JobRun.message_id, "unique", True)
    return "table job_run: index ('job_run_message_id', ('message_id',), True, None) only in the"


def _check(monkeypatch):
    from jobs_plugin.models import JobRun

    monkeypatch.setattr(JobRun.pid, "constraints", [peewee.Check("pid > 0")])
    return "table job_run: check "


def _on_delete(monkeypatch):
    from acme_weather.models import Forecast

    monkeypatch.setattr(Forecast.site, "on_delete", "SET NULL")
    return "table acme_weather_forecast: foreign key (('site_id',), 'site', ('id',), 'SET NULL'"


def _new_table(monkeypatch):
    from jobs_plugin.models import JobRun

    class Gadget(BaseModel):
        name = peewee.CharField(max_length=20)

    monkeypatch.setattr(jobs_plugin, "register_models", hookimpl(lambda: [JobRun, Gadget]))
    return "table gadget: the models have it, the database does not"


@pytest.mark.spec("OPS-8")
@pytest.mark.parametrize(
    "change",
    [_add_column, _nullable, _type, _index, _unique, _on_delete, _check, _new_table],
    ids=lambda f: f.__name__[1:],
)
def test_a_model_changed_without_a_migration_is_caught(make_app, schema_drift, monkeypatch, change):
    from jobs_plugin.models import JobRun

    try:
        expected = change(monkeypatch)
        # Migrated as ever (the migrations do not see the change), compared with the models now.
        found = schema_drift(make_app(plugins=PARTNERS))
    finally:
        if "note" in JobRun._meta.fields:
            JobRun._meta.remove_field("note")
    assert [d for d in found if d.startswith(expected)], found


# -- upgrading a database of the previous release -----------------------------------------


def load_snapshot(url: str) -> None:
    """Fill the empty test database with the previous release's dump for its kind."""
    kind = "sqlite" if url.startswith("sqlite:") else "postgresql"
    sql = gzip.decompress((SNAPSHOTS / f"upgrade-{PREVIOUS}.{kind}.sql.gz").read_bytes()).decode()
    if kind == "sqlite":
        with contextlib.closing(sqlite3.connect(urlparse(url).path)) as conn:
            conn.executescript(sql)
        return
    import psycopg2

    ensure_database(url)
    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True  # the dump's own statements, as psql would run them
        conn.cursor().execute(sql)
    finally:
        conn.close()


def rows(table_names) -> dict[str, list]:
    """Every row of the tables, as sorted (column, value) tuples."""
    out = {}
    for table in table_names:
        cursor = db.database.execute_sql(f'SELECT * FROM "{table}"')
        names = [c[0] for c in cursor.description]
        out[table] = sorted((tuple(zip(names, row)) for row in cursor.fetchall()), key=repr)
    return out


def only(found: list, columns: set[str]) -> list:
    """The rows of ``rows()`` with only ``columns``, sorted."""
    return sorted((tuple(p for p in row if p[0] in columns) for row in found), key=repr)


@pytest.mark.spec("OPS-8")
def test_a_database_of_the_previous_release_upgrades_with_its_data(
    database_url, make_app, schema_drift
):
    load_snapshot(database_url)
    app = make_app(plugins=PARTNERS[:1], migrate=False)
    old_history = history(app)
    with db.connection():
        # A key the add-on remembered in its own column, and the engine's record of it.
        db.database.execute_sql(
            "UPDATE service_addon SET request_key = 'customer:1:order-7' WHERE id = 1"
        )
        for key in ("order-7", "other"):
            db.database.execute_sql(
                "INSERT INTO idempotency_record (owner, key, request, state, status, body, "
                f"problem, started_at) VALUES ('customer:1', '{key}', 'POST /x', 'done', 201, "
                "'{}', FALSE, '2026-12-01 10:00:00')"
            )
        old_tables = tables()
        before = rows(old_tables)
    assert len(before["usage_event"]) > 1000 and len(before["invoice"]) > 10  # the demo's data

    applied = migrations.migrate(app)
    assert "core:0002_idempotency_record" in applied  # the table billing's old 0001 made
    assert not {tuple(line.split(":", 1)) for line in applied} & set(old_history)
    recorded = history(app)
    assert len(recorded) == len(set(recorded)) == len(old_history) + len(applied)
    assert schema_drift(app) == []

    with db.connection():
        after = rows(old_tables)
        refs = dict(
            db.database.execute_sql(
                "SELECT key, ref FROM idempotency_record WHERE key IN ('order-7', 'other')"
            )
        )
    assert refs == {"order-7": "service_addon:1", "other": None}  # the add-on's key moved
    for table, old in before.items():  # every old row, every old column, unchanged
        columns = {name for name, _ in old[0]} - REWRITTEN.get(table, set()) if old else set()
        assert only(after[table], columns) == only(old, columns), f"table {table} changed"

    alice = Client(app)
    alice.login("alice@example.com")  # her password hash, session rows and sequences work
    invoices = alice.get("/api/v1/invoices").json["items"]
    assert invoices and {i["number"] for i in invoices} <= {
        dict(r)["number"] for r in before["invoice"]
    }


# -- frozen -------------------------------------------------------------------------------


def test_engine_freeze_copies_every_model_exactly(make_app, schema_drift):
    """``python -m engine.freeze`` (how a new table's migration is written) loses nothing."""
    from engine.freeze import freeze

    app = make_app(plugins=PARTNERS, migrate=False)
    source = freeze([m for found in app.models.values() for m in found], "Every table.")
    migration: dict = {}
    exec(compile(source, "frozen.py", "exec"), migration)
    with db.connection():
        migration["up"](None, db.database.obj)
    assert schema_drift(app) == []
    with db.connection():
        migration["down"](None, db.database.obj)
        assert tables() == set()


def migration_files():
    for name, module in [*((n, importlib.import_module(m)) for n, m in BUILTIN_PLUGINS), *PARTNERS]:
        folder = Path(module.__file__).parent / "migrations"
        yield from ((name, path) for path in sorted(folder.glob("[0-9]*.py")))


def imported_names(path: Path):
    """(module, name or None) for every import in the file, function-level ones included."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield from ((node.module, alias.name) for alias in node.names)


@pytest.mark.spec("OPS-8")
@pytest.mark.parametrize(
    "plugin,path", list(migration_files()), ids=lambda v: v.name if isinstance(v, Path) else v
)
def test_no_migration_imports_a_model(plugin, path):
    """A live model in a migration rewrites history when the model changes: copy it instead
    (``python -m engine.freeze``), or use migrator operations or SQL."""

    def is_model(value) -> bool:
        return isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel

    for module_name, name in imported_names(path):
        module = importlib.import_module(module_name)
        found = [getattr(module, name, None)] if name else list(vars(module).values())
        models = sorted(v.__name__ for v in found if is_model(v))
        assert not models, (
            f"{plugin} {path.name} imports the live model(s) {models} from {module_name}"
        )
    source = path.read_text()
    assert "def up(" in source


# -- many nodes at once ---------------------------------------------------------------------

NODES = 4


def _node(url: str, data_dir: str, start, results) -> None:
    """One node starting up: build the app, wait for the others, migrate; report either way."""
    from engine.app import create_app
    from engine.plugins import load_plugins
    from engine.settings import load_settings

    try:
        settings = load_settings(
            None,
            environ={},
            overrides={
                "data_dir": data_dir,
                "database_url": url,
                "secret_key": "test-" + "x" * 32,
                "broker_url": f"sqlite:///{data_dir}/queue.sqlite3",
                "base_url": "http://portal.test",
                **TEST_ALLOWANCES,
                "plugins": {"entry_points": False},
            },
        )
        app = create_app(settings, plugins=load_plugins(settings, PARTNERS))
        start.wait(timeout=300)  # four interpreters starting on two busy cores
        results.put(("ok", migrations.migrate(app)))
        app.database.close_all()
    except BaseException as exc:
        start.abort()  # the others stop waiting for this one
        results.put(("error", f"{type(exc).__name__}: {exc}"))


@pytest.mark.spec("OPS-5")
def test_nodes_that_start_at_once_each_migrate_and_every_migration_runs_once(
    database_url, make_app, tmp_path
):
    ensure_database(database_url)
    spawn = multiprocessing.get_context("spawn")  # fresh interpreters, own connections
    start, results = spawn.Barrier(NODES), spawn.Queue()
    nodes = [
        spawn.Process(target=_node, args=(database_url, str(tmp_path / f"node{i}"), start, results))
        for i in range(NODES)
    ]
    for node in nodes:
        node.start()
    outcomes = [results.get(timeout=180) for _ in nodes]
    for node in nodes:
        node.join(timeout=60)
    assert [o for o in outcomes if o[0] != "ok"] == []
    applied = [line for _, lines in outcomes for line in lines]

    app = make_app(plugins=PARTNERS, migrate=False)
    everything = [
        f"{name}:{m.name}" for name, runner in migrations.runners(app) for m in runner.migrations()
    ]
    assert sorted(applied) == sorted(everything)  # each by exactly one node
    assert sorted(f"{p}:{m}" for p, m in history(app)) == sorted(everything)


@pytest.mark.spec("OPS-5")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # PostgreSQL: a lock query
def test_a_node_waiting_for_the_sqlite_migration_lock_has_not_opened_the_database(
    make_app, monkeypatch
):
    # Connecting switches a new SQLite file to WAL, which needs the database to itself: a
    # node that connected before taking the lock failed with "database is locked".
    app = make_app(migrate=False)
    connected_when_locking, real_flock = [], fcntl.flock

    def flock(fd, operation):
        connected_when_locking.append(not db.database.is_closed())
        return real_flock(fd, operation)

    monkeypatch.setattr(migrations.fcntl, "flock", flock)
    assert migrations.migrate(app)
    assert connected_when_locking == [False]
