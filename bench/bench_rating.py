"""Usage rating throughput (issue 4): events per second on PostgreSQL and SQLite, in batches.

Side by side in one run, per database:

- **rated, batches of 1000**: ``plugins.usage.rating.rate`` on batches of mixed
  events (data, voice, SMS) spread over many services, each batch one locked
  transaction writing the events, the ledger and the new balances;
- **rated, batches of 1000, notifications off**: the same with the
  notifications plugin disabled, so low-balance thresholds come from the
  operator's defaults instead of the customers' preferences (one bulk
  ``balance_thresholds`` query per batch and balance type);
- **rated, one at a time**: the same code with one event per call;
- **raw executemany, ledger rows**: the very ledger rows the batched run wrote,
  inserted with the DB-API ``cursor.executemany`` in the same batches, one
  transaction each, into a table of the same shape (the floor of "writing the
  ledger" with no rules, no locks, no events);
- **raw executemany, events + ledger**: the same, with the event rows too.

    python bench/run.py rating            # through the harness (writes BENCHMARKS.md)
    python bench/bench_rating.py          # standalone: prints the table
    python bench/bench_rating.py --events 20000 --repeat 1

PostgreSQL comes from ``PORTICO_BENCH_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``); the benchmark works in a schema
of its own and drops it afterwards.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

from harness import Bench, benchmark  # noqa: E402

PG_URL = os.environ.get("PORTICO_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SERVICES = 500
BATCH = 1000


# -- a database with services and buckets ------------------------------------------------------


def open_app(database_url: str, workdir: Path, disabled: tuple = ()):
    from engine import migrations
    from engine.app import create_app
    from engine.settings import load_settings

    settings = load_settings(
        None,
        environ={},
        overrides={
            "data_dir": str(workdir),
            "database_url": database_url,
            "broker_url": f"sqlite:///{workdir / 'queue.sqlite3'}",
            "secret_key": "b" * 40,
            "base_url": "http://127.0.0.1:8000",
            "mail": {"allow_file_backend": True},
            "sandbox": {"allow_outside_demo": True},  # as the demo (OPS-2)
            "plugins": {"entry_points": False, "disabled": list(disabled)},
        },
    )
    app = create_app(settings)
    migrations.migrate(app)
    return app


def seed(services: int) -> list:
    """Customers with a mobile service each (every tenth prepaid) and a realistic set of buckets."""
    from engine.db import database, utcnow
    from engine.models import Customer, Product, Service
    from plugins.usage.models import Bucket

    now = utcnow()
    with database.atomic():
        product = Product.create(code="bench-mobile", name="Bench Mobile", monthly_fee=1500)
        made = []
        for i in range(services):
            customer = Customer.create(number=f"B-{i:07d}", name=f"Bench {i}")
            prepaid = i % 10 == 0
            s = Service.create(
                customer=customer,
                product=product,
                name=f"Mobile {i}",
                service_type="prepaid" if prepaid else "mobile",
                renews_at=now + timedelta(days=20),
            )
            rows = [
                ("data", "any", 10, 10**9, now + timedelta(days=5)),
                ("voice", "domestic", 30, 1000 * 60, None),
                ("sms", "domestic", 30, 1000, None),
                ("monetary", "any", 20, 2000, None),
            ]
            if not prepaid:
                rows.append(("data", "any", 30, 50 * 10**9, None))
            for kind, scope, weight, amount, expires in rows:
                Bucket.create(
                    service=s,
                    type=kind,
                    scope=scope,
                    weight=weight,
                    initial=amount,
                    remaining=amount,
                    expires_at=expires,
                    unit={"data": "bytes", "voice": "seconds", "sms": "messages"}.get(kind, "GBP"),
                    renewable=kind != "monetary",
                )
            made.append(s.id)
    return made


def make_events(rng: random.Random, service_ids: list, count: int, tag: str) -> list:
    from engine.db import utcnow
    from plugins.usage.rating import UsageIn

    now = utcnow()
    out = []
    for i in range(count):
        kind = rng.choices(("data", "voice", "sms"), weights=(60, 25, 15))[0]
        at = now - timedelta(seconds=rng.randrange(86400))
        if kind == "data":
            e = UsageIn(
                f"{tag}-{i}", rng.choice(service_ids), "data", rng.randint(10**5, 5 * 10**7), at
            )
        elif kind == "voice":
            dest = rng.choices(("onnet", "offnet", "international", "special"), (30, 60, 7, 3))[0]
            e = UsageIn(
                f"{tag}-{i}",
                rng.choice(service_ids),
                "voice",
                rng.randint(5, 900),
                at,
                destination=dest,
                international=dest == "international",
                counterparty="+447700900123",
            )
        else:
            e = UsageIn(
                f"{tag}-{i}",
                rng.choice(service_ids),
                "sms",
                1,
                at,
                international=rng.random() < 0.05,
                counterparty="+447700900456",
            )
        out.append(e)
    return out


# -- the measurements ----------------------------------------------------------------------------


def rate_batched(app, events: list) -> tuple[float, int]:
    from plugins.usage.models import LedgerEntry
    from plugins.usage.rating import rate

    before = LedgerEntry.select().count()
    started = time.perf_counter()
    for i in range(0, len(events), BATCH):
        rate(app, events[i : i + BATCH], quiet=False)
    elapsed = time.perf_counter() - started
    return elapsed, LedgerEntry.select().count() - before


def rate_singly(app, events: list) -> float:
    from plugins.usage.rating import rate

    started = time.perf_counter()
    for e in events:
        rate(app, [e])
    return time.perf_counter() - started


RAW_DDL = {
    "ledger": "CREATE TABLE raw_ledger (id {pk}, bucket_id INTEGER NOT NULL, kind VARCHAR(15) "
    "NOT NULL, delta BIGINT NOT NULL, reference VARCHAR(100) NOT NULL, "
    "created_at TIMESTAMP NOT NULL)",
    "events": "CREATE TABLE raw_event (id {pk}, event_id VARCHAR(100) NOT NULL UNIQUE, "
    "service_id INTEGER NOT NULL, type VARCHAR(10) NOT NULL, quantity BIGINT NOT NULL, "
    "occurred_at TIMESTAMP NOT NULL, destination VARCHAR(15) NOT NULL, "
    "international BOOLEAN NOT NULL, counterparty VARCHAR(40) NOT NULL, "
    "covered BIGINT NOT NULL, charged BIGINT NOT NULL, overage BIGINT NOT NULL, "
    "rated_at TIMESTAMP NOT NULL)",
}


def raw_executemany(batches: list[tuple[list, list]], with_events: bool, postgres: bool) -> float:
    """The same rows through ``cursor.executemany``: one transaction per batch, like rating."""
    from engine.db import database

    p = "%s" if postgres else "?"
    pk = "SERIAL PRIMARY KEY" if postgres else "INTEGER PRIMARY KEY"
    conn = database.connection()
    cur = conn.cursor()
    for table in ("raw_ledger", "raw_event"):
        cur.execute(f"DROP TABLE IF EXISTS {table}")
    cur.execute(RAW_DDL["ledger"].format(pk=pk))
    cur.execute("CREATE INDEX raw_ledger_bucket ON raw_ledger (bucket_id, id)")
    cur.execute(RAW_DDL["events"].format(pk=pk))
    cur.execute("CREATE INDEX raw_event_service ON raw_event (service_id, occurred_at)")
    conn.commit()
    ledger_sql = (
        f"INSERT INTO raw_ledger (bucket_id, kind, delta, reference, created_at) "
        f"VALUES ({', '.join([p] * 5)})"
    )
    event_sql = (
        "INSERT INTO raw_event (event_id, service_id, type, quantity, occurred_at, "
        "destination, international, counterparty, covered, charged, overage, "
        f"rated_at) VALUES ({', '.join([p] * 12)})"
    )
    started = time.perf_counter()
    for events, ledger in batches:
        if with_events:
            cur.executemany(event_sql, events)
        cur.executemany(ledger_sql, ledger)
        conn.commit()
    return time.perf_counter() - started


def captured_rows(events: list) -> list[tuple[list, list]]:
    """The event and ledger rows the batched run wrote, grouped in its batches."""
    from plugins.usage.models import LedgerEntry, UsageEvent

    ids = [e.id for e in events]
    by_event: dict[str, list] = {}
    for row in (
        LedgerEntry.select(
            LedgerEntry.bucket,
            LedgerEntry.kind,
            LedgerEntry.delta,
            LedgerEntry.reference,
            LedgerEntry.created_at,
        )
        .where(LedgerEntry.reference.in_(ids))
        .tuples()
    ):
        by_event.setdefault(row[3], []).append(tuple(_plain(v) for v in row))
    rows = {
        r[0]: tuple(_plain(v) for v in r)
        for r in (
            UsageEvent.select(
                UsageEvent.event_id,
                UsageEvent.service,
                UsageEvent.type,
                UsageEvent.quantity,
                UsageEvent.occurred_at,
                UsageEvent.destination,
                UsageEvent.international,
                UsageEvent.counterparty,
                UsageEvent.covered,
                UsageEvent.charged,
                UsageEvent.overage,
                UsageEvent.rated_at,
            )
            .where(UsageEvent.event_id.in_(ids))
            .tuples()
        )
    }
    out = []
    for i in range(0, len(ids), BATCH):
        part = ids[i : i + BATCH]
        out.append(([rows[x] for x in part], [r for x in part for r in by_event.get(x, [])]))
    return out


def _plain(value):
    from datetime import datetime, timezone

    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def run_backend(label: str, url: str, workdir: Path, events: int, single: int, repeat: int) -> dict:
    from engine import db
    from plugins.usage.models import Bucket, LedgerEntry

    app = open_app(url, workdir)
    quiet_app = open_app(url, workdir, disabled=("notifications",))
    db.bind(app.database)
    postgres = db.is_postgres()
    with db.connection():
        service_ids = seed(SERVICES)
        rng = random.Random(42)
        batched, no_notes, singles, raw_ledger, raw_all, rows_per_event = [], [], [], [], [], []
        for r in range(repeat):
            db.bind(quiet_app.database)
            with db.connection():
                evs = make_events(rng, service_ids, events, f"q{r}")
                no_notes.append(events / rate_batched(quiet_app, evs)[0])
            db.bind(app.database)
            evs = make_events(rng, service_ids, events, f"r{r}")
            elapsed, ledger_rows = rate_batched(app, evs)
            batched.append(events / elapsed)
            rows_per_event.append(ledger_rows / events)
            rows = captured_rows(evs)
            raw_ledger.append(events / raw_executemany(rows, False, postgres))
            raw_all.append(events / raw_executemany(rows, True, postgres))
            singles.append(
                single / rate_singly(app, make_events(rng, service_ids, single, f"s{r}"))
            )
        # The ledger must still sum to every balance after all that.
        bad = [
            b.id
            for b in Bucket.select()
            if b.remaining
            != b.initial
            + sum(
                e.delta
                for e in LedgerEntry.select(LedgerEntry.delta).where(LedgerEntry.bucket == b.id)
            )
        ]
    app.database.close_all()
    quiet_app.database.close_all()

    def stats(samples):
        return {
            "max": round(max(samples)),
            "median": round(statistics.median(samples)),
            "samples": [round(s) for s in samples],
        }

    return {
        "database": label,
        "events_per_run": events,
        "batch": BATCH,
        "ledger_rows_per_event": round(statistics.mean(rows_per_event), 3),
        "rated_batched": stats(batched),
        "rated_batched_notifications_off": stats(no_notes),
        "rated_one_at_a_time": stats(singles),
        "raw_executemany_ledger": stats(raw_ledger),
        "raw_executemany_events_and_ledger": stats(raw_all),
        "ledger_consistent": not bad,
    }


def postgres_schema() -> tuple[str, str]:
    import psycopg2

    schema = "bench_rating_" + uuid.uuid4().hex[:8]
    conn = psycopg2.connect(PG_URL)
    conn.autocommit = True
    conn.cursor().execute(f"CREATE SCHEMA {schema}")
    conn.close()
    sep = "&" if urlparse(PG_URL).query else "?"
    return schema, f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


def drop_schema(schema: str) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_URL)
    conn.autocommit = True
    conn.cursor().execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    conn.close()


def measure(
    events: int = 50_000, single: int = 1_000, repeat: int = 3, workdir: Path | None = None
) -> dict:
    base = Path(workdir or tempfile.mkdtemp(prefix="portico-bench-rating-"))
    results = {}
    sqlite_dir = base / "sqlite"
    shutil.rmtree(sqlite_dir, ignore_errors=True)  # a run cut short leaves its database
    sqlite_dir.mkdir(parents=True)
    results["SQLite"] = run_backend(
        "SQLite", f"sqlite:///{sqlite_dir / 'bench.sqlite3'}", sqlite_dir, events, single, repeat
    )
    schema, url = postgres_schema()
    try:
        pg_dir = base / "postgres"
        pg_dir.mkdir(parents=True, exist_ok=True)
        results["PostgreSQL"] = run_backend("PostgreSQL", url, pg_dir, events, single, repeat)
    finally:
        drop_schema(schema)
    return results


def table(results: dict) -> str:
    rows = [
        ("rated, batches of 1000", "rated_batched"),
        ("rated, batches of 1000, notifications plugin off", "rated_batched_notifications_off"),
        ("rated, one event per call", "rated_one_at_a_time"),
        ("raw executemany: ledger rows only", "raw_executemany_ledger"),
        ("raw executemany: events + ledger rows", "raw_executemany_events_and_ledger"),
    ]
    dbs = [d for d in ("PostgreSQL", "SQLite") if d in results]
    lines = ["| events/s (max · median) | " + " | ".join(dbs) + " |", "|---|" + "---:|" * len(dbs)]
    for label, key in rows:
        cells = [f"{results[d][key]['max']:,} · {results[d][key]['median']:,}" for d in dbs]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@benchmark(
    "rating", "Usage rating: events/s in batches on PostgreSQL and SQLite vs raw executemany"
)
def rating(bench: Bench) -> dict:
    events = int(os.environ.get("PORTICO_BENCH_RATING_EVENTS", 50_000))
    results = measure(events=events, repeat=bench.repeat, workdir=bench.workdir / "rating")
    first = next(iter(results.values()))
    return {
        "results": results,
        "ratios": {
            f"{d}_batched_vs_raw_ledger": round(
                r["rated_batched"]["median"] / r["raw_executemany_ledger"]["median"], 3
            )
            for d, r in results.items()
        },
        "table": table(results),
        "notes": [
            f"{first['events_per_run']:,} events per run (60% data, 25% voice, 15% SMS) over "
            f"{SERVICES} services with 4-5 buckets each; every tenth service prepaid "
            "(uncovered use charged to credit). About "
            f"{first['ledger_rows_per_event']} ledger rows per event.",
            "Each rated batch is one locked transaction and one commit; on PostgreSQL six "
            "statements whatever its size (pinned by tests/test_usage_batch.py): lock the "
            "services' rows (= ANY array, FOR UPDATE, id order), find already-rated event ids, "
            "load the buckets, rate in memory, then COPY the events, COPY the ledger rows and "
            "one UPDATE … FROM unnest of the balances. SQLite: multi-row INSERTs and "
            "UPDATE … CASE in chunks of 500.",
            "Raw executemany is the DB-API baseline the issue asks for; psycopg2's "
            "executemany sends one statement per row, SQLite's reuses one prepared "
            "statement.",
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--single", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = measure(args.events, args.single, args.repeat)
    print(table(results))
    for d, r in results.items():
        print(
            f"{d}: {r['ledger_rows_per_event']} ledger rows/event, ledger consistent: "
            f"{r['ledger_consistent']}"
        )


if __name__ == "__main__":
    main()
