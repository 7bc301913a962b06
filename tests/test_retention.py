"""Growth (OPS-7): 64-bit keys for the high-volume tables, and retention with archival.

- Usage events, ledger entries and audit events take ids above 2^31 (PostgreSQL: the
  columns and their sequences are bigint after the migrations; SQLite's rowid always was).
- ``portico archive`` (and the nightly task) writes rows older than ``[retention]`` to
  gzipped JSON Lines files in storage and deletes them: recent rows and a renewing
  service's current period stay, balances and the ledger do not change, the files hold
  every archived row once, a re-run does nothing twice, an interrupted run is finished by
  the next one.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import timedelta

import pytest
from click.testing import CliRunner

from engine import db, retention
from engine.audit import record_system
from engine.db import utcnow
from engine.models import AuditEvent, StaffUser
from engine.retention import ArchiveBatch
from engine.settings import SettingsError, load_settings
from engine.testing import TEST_ENVIRON, TEST_SETTINGS, Client, PrincipalHeader, as_user, problem
from plugins.usage.commands import usage_group
from plugins.usage.models import Bucket, LedgerEntry, UsageEvent
from plugins.usage.rating import rate
from usage_helpers import GB, bucket, customer_user, event, event_json, service_for

AUTH = ("test-auth", PrincipalHeader())
BIG = 2**31 + 7
KEEP = {"usage_events_days": 100, "audit_events_days": 30, "batch_size": 100}


def restart_sequence(model) -> None:
    """PostgreSQL: the next id the table's sequence gives is max(id) + 1 (SQLite does that)."""
    if db.is_postgres():
        table = model._meta.table_name
        db.database.execute_sql(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f'(SELECT MAX("id") FROM "{table}"))'
        )


@pytest.mark.spec("OPS-7")
def test_usage_ledger_and_audit_ids_go_past_32_bits(make_app):
    app = make_app()
    service = service_for(customer_user())
    plan = bucket(service, amount=GB)
    # One row of each table at 2^31 + 7, then the real code paths write the next ones.
    AuditEvent.create(id=BIG, action="test.big")
    UsageEvent.create(
        id=BIG, event_id="big-0", service=service.id, type="data", quantity=1, occurred_at=utcnow()
    )
    LedgerEntry.create(id=BIG, bucket=plan.id, kind="adjustment", delta=0)
    for model in (AuditEvent, UsageEvent, LedgerEntry):
        restart_sequence(model)
    rate(app, [event(service, 10**6, id="big-1")])  # COPY on PostgreSQL, INSERT on SQLite
    event_row = UsageEvent.get(UsageEvent.event_id == "big-1")
    ledger_row = LedgerEntry.get(LedgerEntry.reference == "big-1")
    audit_row = record_system(app, "test.bigger")
    assert (event_row.id, ledger_row.id, audit_row.id) == (BIG + 1, BIG + 1, BIG + 1)
    assert UsageEvent.get_by_id(BIG + 1).quantity == 10**6  # reads back by its 64-bit key
    assert Bucket.get_by_id(plan.id).remaining == GB - 10**6
    if db.is_postgres():
        types = dict(
            db.database.execute_sql(
                "SELECT table_name, data_type FROM information_schema.columns WHERE column_name = "
                "'id' AND table_name IN ('usage_event', 'ledger_entry', 'audit_event')"
            ).fetchall()
        )
        assert types == dict.fromkeys(("usage_event", "ledger_entry", "audit_event"), "bigint")
        sequences = dict(
            db.database.execute_sql(
                "SELECT sequencename, data_type FROM pg_sequences WHERE sequencename IN "
                "('usage_event_id_seq', 'ledger_entry_id_seq', 'audit_event_id_seq')"
            ).fetchall()
        )
        assert set(sequences.values()) == {"bigint"} and len(sequences) == 3


# -- retention and archival ---------------------------------------------------------------


@pytest.fixture
def history(make_app):
    """An app keeping 100 days of usage and 30 of audit events, with old and new rows."""
    app = make_app(plugins=[AUTH], retention=KEEP)
    now = utcnow()
    monthly = service_for(customer_user())  # renewed 10 days ago
    annual = service_for(
        customer_user(), period_start=now - timedelta(days=300), renews_at=now + timedelta(days=65)
    )
    plan = bucket(monthly, amount=1000 * GB)
    old = [
        event(monthly, 10**6, occurred_at=now - timedelta(days=200 - i % 50)) for i in range(250)
    ]
    recent = [event(monthly, 10**6, occurred_at=now - timedelta(days=d)) for d in (1, 5, 99)]
    this_year = [event(annual, 60, "voice", occurred_at=now - timedelta(days=150))]
    rate(app, old + recent + this_year)
    for i in range(120):
        AuditEvent.create(
            action="test.old",
            target=f"n:{i}",
            data={"i": i},
            created_at=now - timedelta(days=31 + i),
        )
    record_system(app, "test.recent")
    return {"app": app, "plan": plan, "old": old, "kept": recent + this_year}


def archived_rows(app, name: str) -> list[dict]:
    rows = []
    for info in app.storage.keys(f"retention/{name}/"):
        rows += retention.read(app, info.key)
    return rows


def snapshot(model) -> dict:
    fields = model._meta.sorted_fields
    return {row[0]: row for row in model.select(*fields).tuples()}


@pytest.mark.spec("OPS-7")
def test_old_rows_are_archived_once_and_removed_and_balances_stay(history):
    app, plan = history["app"], history["plan"]
    before_events, before_audit = snapshot(UsageEvent), snapshot(AuditEvent)
    ledger = [tuple(r) for r in LedgerEntry.select().order_by(LedgerEntry.id).tuples()]
    remaining = Bucket.get_by_id(plan.id).remaining

    results = {r.name: r for r in retention.run(app)}
    assert (results["usage_events"].rows, results["usage_events"].files) == (250, 3)
    assert (results["audit_events"].rows, results["audit_events"].files) == (120, 2)

    kept = {e.event_id for e in UsageEvent.select()}
    assert kept == {e.id for e in history["kept"]}  # recent, and the annual plan's period
    assert not AuditEvent.select().where(AuditEvent.action == "test.old").exists()
    assert AuditEvent.select().where(AuditEvent.action == "test.recent").exists()
    # Balances and the ledger are untouched: remaining = initial + sum(ledger) still holds.
    assert Bucket.get_by_id(plan.id).remaining == remaining
    assert [tuple(r) for r in LedgerEntry.select().order_by(LedgerEntry.id).tuples()] == ledger

    # The files are complete and readable: each archived row once, every column as it was.
    for name, model, before in (
        ("usage_events", UsageEvent, before_events),
        ("audit_events", AuditEvent, before_audit),
    ):
        rows = archived_rows(app, name)
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids)) == results[name].rows
        gone = set(before) - {r[0] for r in model.select(model.id).tuples()}
        assert set(ids) == gone
        columns = [f.column_name for f in model._meta.sorted_fields]
        for row in rows:
            as_it_was = dict(zip(columns, before[row["id"]]))
            assert row == json.loads(json.dumps(as_it_was, default=retention._plain))
    usage = {r["event_id"]: r for r in archived_rows(app, "usage_events")}
    assert usage.keys() == {e.id for e in history["old"]}
    sample = history["old"][7]
    assert usage[sample.id]["quantity"] == 10**6
    assert usage[sample.id]["occurred_at"].startswith(sample.occurred_at.date().isoformat())
    assert {r["data"]["i"] for r in archived_rows(app, "audit_events")} == set(range(120))
    assert [b.state for b in ArchiveBatch.select()] == ["done"] * 5

    # A second run finds nothing: no new files, nothing deleted twice.
    files = sorted(i.key for i in app.storage.keys("retention/"))
    again = retention.run(app)
    assert [(r.rows, r.files, r.resumed) for r in again] == [(0, 0, 0)] * 2
    assert sorted(i.key for i in app.storage.keys("retention/")) == files
    assert AuditEvent.select().where(AuditEvent.action == "retention.archived").count() == 2


class Crash(Exception):
    pass


@pytest.mark.spec("OPS-7")
@pytest.mark.parametrize("where", ["before the file is stored", "after the file is stored"])
def test_an_interrupted_run_is_finished_by_the_next_one(history, monkeypatch, where):
    app = history["app"]
    real_put, real_finish = app.storage.put, retention.finish
    calls = Counter()

    def put(key, data, content_type=None):
        calls["put"] += 1
        if where == "before the file is stored" and calls["put"] == 2:
            raise Crash(key)
        return real_put(key, data, content_type)

    def finish(archive, batch, ids):
        calls["finish"] += 1
        if where == "after the file is stored" and calls["finish"] == 2:
            raise Crash(batch.key)  # the file is there, its rows are not deleted
        return real_finish(archive, batch, ids)

    monkeypatch.setattr(app.storage, "put", put)
    monkeypatch.setattr(retention, "finish", finish)
    with pytest.raises(Crash):
        retention.run(app, only=["usage_events"])
    assert UsageEvent.select().count() == 254 - 100  # the first batch went, the second not
    pending = list(ArchiveBatch.select().where(ArchiveBatch.state == "pending"))
    assert len(pending) == 1
    assert app.storage.exists(pending[0].key) == (where == "after the file is stored")

    monkeypatch.undo()
    # The next run finishes (or forgets) the pending batch: every old row archived once.
    [result] = retention.run(app, only=["usage_events"])
    assert result.resumed == 1 and result.rows == 150
    rows = archived_rows(app, "usage_events")
    assert Counter(r["event_id"] for r in rows) == Counter({e.id: 1 for e in history["old"]})
    assert {e.event_id for e in UsageEvent.select()} == {e.id for e in history["kept"]}
    assert not ArchiveBatch.select().where(ArchiveBatch.state == "pending").exists()


@pytest.mark.spec("OPS-7", "USE-7")
def test_intake_refuses_events_older_than_the_retention(history, tmp_path):
    app = history["app"]
    service = service_for(customer_user())
    ops = as_user(
        Client(app),
        StaffUser.create(email="ops@example.com", name="Ops", permissions="can_post_usage"),
    )
    retention.run(app)
    # An archived event sent again cannot be recognised as a repeat: refused, not rated twice.
    again = event_json(
        service, 10, id=history["old"][0].id, occurred_at=history["old"][0].occurred_at
    )
    body = problem(
        ops.post("/api/v1/staff/usage", json={"events": [event_json(service, 10), again]})
    )
    assert body["status"] == 422
    assert "usage retention (100 days)" in body["errors"]["events"]["1"]["occurred_at"][0]
    assert not UsageEvent.select().where(UsageEvent.service == service.id).exists()
    fine = ops.post(
        "/api/v1/staff/usage",
        json={"events": [event_json(service, 10, occurred_at=utcnow() - timedelta(days=99))]},
    )
    assert fine.status_code == 200 and fine.json["rated"] == 1
    # The CSV import refuses the line the same way.
    path = tmp_path / "usage.csv"
    path.write_text(
        "id,service_id,type,quantity,occurred_at\n"
        f"{again['id']},{service.id},data,10,{again['occurred_at']}\n"
        f"late-ok,{service.id},data,10,{utcnow().isoformat()}\n"
    )
    result = CliRunner().invoke(usage_group(lambda: app), ["import", str(path)])
    assert "line 2: occurred_at: Older than the usage retention (100 days)" in result.stderr
    assert "2 lines: 1 rated, 0 duplicates, 1 with errors" in result.stdout
    assert not UsageEvent.select().where(UsageEvent.event_id == again["id"]).exists()


@pytest.mark.spec("OPS-7")
def test_the_archive_command_and_the_nightly_task(history):
    from engine.cli import cli

    app = history["app"]
    env = {
        **TEST_ENVIRON,
        "PORTICO_DATABASE_URL": app.settings.database_url,
        "PORTICO_DATA_DIR": str(app.settings.data_path),
        "PORTICO_BROKER_URL": app.settings.broker_url,
        "PORTICO_SECRET_KEY": app.settings.secret_key,
        "PORTICO_PLUGINS_ENTRY_POINTS": "false",
        "PORTICO_RETENTION_USAGE_EVENTS_DAYS": "100",
        "PORTICO_RETENTION_BATCH_SIZE": "100",
    }
    dry = CliRunner().invoke(cli, ["archive", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "usage_events: 250 rows older than 100 days" in dry.output
    assert "audit_events: kept forever" in dry.output  # not set in this environment
    assert UsageEvent.select().count() == 254
    done = CliRunner().invoke(
        cli, ["archive", "--only", "usage_events", "--max-batches", "2"], env=env
    )
    assert done.exit_code == 0, done.output
    assert "usage_events: 200 rows older than" in done.output and "in 2 files" in done.output
    rest = CliRunner().invoke(cli, ["archive"], env=env)
    assert "usage_events: 50 rows older than" in rest.output
    assert "audit_events: kept forever" in rest.output
    assert AuditEvent.select().where(AuditEvent.action == "test.old").count() == 120
    wrong = CliRunner().invoke(cli, ["archive", "--only", "usage"], env=env)
    assert wrong.exit_code != 0 and "no such archive" in wrong.output

    [task] = [
        a
        for a in app.tasks.periodic_actors()
        if a.actor_name == "engine.retention.archive_old_rows"
    ]
    assert str(task.options["periodic"]) == "40 3 * * *"
    assert retention.archive_old_rows(app) == 120  # the app's own settings keep 30 days


@pytest.mark.spec("OPS-7")
@pytest.mark.parametrize("backend", ["database", "s3"])
def test_archives_go_to_the_configured_storage(make_app, backend, request):
    storage = (
        request.getfixturevalue("s3").settings() if backend == "s3" else {"backend": "database"}
    )
    app = make_app(retention=KEEP, storage=storage)
    for i in range(3):
        AuditEvent.create(
            action="test.old", data={"i": i}, created_at=utcnow() - timedelta(days=40)
        )
    [result] = retention.run(app, only=["audit_events"])
    assert (result.rows, result.files) == (3, 1)
    [info] = list(app.storage.keys("retention/audit_events/"))
    lines = gzip.decompress(app.storage.read(info.key)).decode().splitlines()
    assert sorted(json.loads(line)["data"]["i"] for line in lines) == [0, 1, 2]
    assert not AuditEvent.select().where(AuditEvent.action == "test.old").exists()


@pytest.mark.spec("OPS-7", "OPS-2")
@pytest.mark.parametrize(
    "retention_,error",
    [
        ({"usage_events_days": 30}, "retention.usage_events_days: 0 (keep forever) or at least 93"),
        ({"audit_events_days": 7}, "retention.audit_events_days: 0 (keep forever) or at least 30"),
        ({"batch_size": 10}, "retention.batch_size:"),
    ],
)
def test_retention_settings_are_validated(tmp_path, retention_, error):
    with pytest.raises(SettingsError, match=error.replace("(", r"\(").replace(")", r"\)")):
        load_settings(
            None,
            environ={},
            overrides={**TEST_SETTINGS, "data_dir": str(tmp_path), "retention": retention_},
        )


@pytest.mark.spec("OPS-7")
def test_hook_register_archives_adds_a_plugins_table(make_app):
    from engine import hookimpl
    from engine.models import OutboxMessage

    class Keeper:  # a plugin archiving a table of its own (here: the outbox, for the test)
        @hookimpl
        def register_archives(self, app):
            return [
                retention.Archive(
                    "outbox", OutboxMessage, OutboxMessage.created_at, days=lambda app: 30
                )
            ]

    app = make_app(plugins=[("keeper", Keeper())])
    now = utcnow()
    with db.connection():
        for days in (45, 40, 2):
            OutboxMessage.create(
                message_id=f"m-{days}",
                actor="a.b",
                payload={"days": days},
                created_at=now - timedelta(days=days),
                sent_at=now,
                done_at=now,
            )
        results = {r.name: r for r in retention.run(app, only=["outbox"])}
        assert results["outbox"].rows == 2
        assert sorted(r["message_id"] for r in archived_rows(app, "outbox")) == ["m-40", "m-45"]
        assert [m.message_id for m in OutboxMessage.select()] == ["m-2"]
