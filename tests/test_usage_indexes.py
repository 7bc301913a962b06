"""The usage tables' indexes (issue 9): the customer pages' reads of the events table are
index ranges, whatever its size; migration 0002 brings an older database to that shape."""

from __future__ import annotations

import importlib
import re
from datetime import timedelta

from engine import db
from engine.db import utcnow
from plugins.usage import service as usage
from plugins.usage.models import UsageEvent
from usage_helpers import customer_user, service_for

MIGRATION = importlib.import_module("plugins.usage.migrations.0002_usage_event_indexes")


def index_names(table: str) -> set[str]:
    schema = (
        db.database.execute_sql("SELECT current_schema()").fetchone()[0]
        if db.is_postgres()
        else None
    )
    return {i.name for i in db.database.get_indexes(table, schema)}


def plan(query) -> str:
    """The query's plan; on PostgreSQL with sequential scans off, so a tiny table shows the index."""
    sql, params = query.sql()
    if not db.is_postgres():
        return "\n".join(
            r[-1] for r in db.database.execute_sql("EXPLAIN QUERY PLAN " + sql, params)
        )
    with db.database.atomic():
        db.database.execute_sql("SET LOCAL enable_seqscan = off")
        return "\n".join(r[0] for r in db.database.execute_sql("EXPLAIN " + sql, params))


def test_call_records_page_is_an_index_range_without_a_sort(app):
    service = service_for(customer_user())
    lines = plan(usage.calls(service.id).order_by(UsageEvent.id.desc()).limit(51))
    assert "usage_event_service_id_type_id" in lines
    assert "Sort" not in lines and "TEMP B-TREE" not in lines, lines


def test_usage_history_reads_only_the_days_it_shows(app):
    service = service_for(customer_user())
    now = utcnow()  # a year of events, so the planner knows 30 days are a small part of it
    UsageEvent.insert_many(
        [
            {
                "event_id": f"e{i}",
                "service": service.id,
                "type": "data",
                "quantity": 1,
                "occurred_at": now - timedelta(days=i % 365),
            }
            for i in range(1000)
        ]
    ).execute()
    if db.is_postgres():
        db.database.execute_sql('ANALYZE "usage_event"')
    since = now - timedelta(days=30)
    lines = plan(
        UsageEvent.select(UsageEvent.occurred_at, UsageEvent.quantity).where(
            (UsageEvent.service == service.id) & (UsageEvent.occurred_at >= since)
        )
    )
    assert "usage_event_service_id_occurred_at" in lines
    assert re.search(r"occurred_at ?>", lines), lines  # a bound of the index range
    assert "Filter" not in lines, lines


def test_migration_replaces_the_redundant_indexes_and_reverts(app):
    def shape():
        return index_names("usage_event") | index_names("ledger_entry")

    for name, table, columns in MIGRATION.REDUNDANT:  # the shape 0001 made before 0002
        db.database.execute_sql(f'CREATE INDEX "{name}" ON "{table}" ({columns})')
    db.database.execute_sql('DROP INDEX "usage_event_service_id_type_id"')
    old = shape()
    assert {"usage_event_service_id", "ledger_entry_bucket_id"} <= old

    MIGRATION.up(None, db.database)
    new = shape()
    assert "usage_event_service_id_type_id" in new
    assert not {"usage_event_service_id", "ledger_entry_bucket_id"} & new
    assert {"usage_event_service_id_occurred_at", "ledger_entry_bucket_id_id"} <= new

    MIGRATION.down(None, db.database)
    assert shape() == old
    MIGRATION.up(None, db.database)
    MIGRATION.up(None, db.database)  # idempotent
    assert shape() == new
