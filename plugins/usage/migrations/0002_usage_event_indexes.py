"""Indexes of the usage tables for 10,000,000 events (issue 9, DESIGN.md "Performance targets").

- ``usage_event (service_id, type, id)``: the call records (``calls()``: one
  service's voice events, newest first, keyset pages by id) read one page of
  index entries instead of every event of the service, then sort.
- ``usage_event (service_id)`` and ``ledger_entry (bucket_id)`` go: the
  composite indexes ``(service_id, occurred_at)`` and ``(bucket_id, id)``
  start with the same column and serve every lookup they served. On
  PostgreSQL the single-column one even won the plan of the usage history
  (``service_id = ? AND occurred_at >= ?``), reading all of a service's
  events to keep the last 30 days; and each index is written by every
  rated event.

``IF [NOT] EXISTS``: a database made before 0001 was frozen (when it created the
models of its day) may already be in this shape.
"""

CREATE = 'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ({columns})'
NEW = [("usage_event_service_id_type_id", "usage_event", '"service_id", "type", "id"')]
REDUNDANT = [("usage_event_service_id", "usage_event", '"service_id"'),
             ("ledger_entry_bucket_id", "ledger_entry", '"bucket_id"')]


def up(migrator, db):
    for name, table, columns in NEW:
        db.execute_sql(CREATE.format(name=name, table=table, columns=columns))
    for name, _, _ in REDUNDANT:
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')


def down(migrator, db):
    for name, table, columns in REDUNDANT:
        db.execute_sql(CREATE.format(name=name, table=table, columns=columns))
    for name, _, _ in NEW:
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
