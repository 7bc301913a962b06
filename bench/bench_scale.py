"""Customer pages at scale: p50/p99 with 10,000 customers and more (issue 9).

For each scale a fresh database is seeded with the demo customers and then
bulk-filled (PostgreSQL ``COPY``, SQLite ``executemany``; ``BATCH`` rows a transaction)
with ``customers`` customers, one mobile service each with two buckets, and
``events`` rated usage events spread over those services. Alice (a demo
customer) signs in and wrk measures her main pages: the dashboard API, the
services list, the usage page and the invoice list.

    python bench/run.py scale                                    # the default scales
    PORTICO_BENCH_SCALES=postgresql:10000:100000,postgresql:1000000:10000000 \\
        python bench/run.py scale                                # the full size of DESIGN.md
    python bench/bench_scale.py --database postgresql --customers 1000000 --events 10000000

Target (DESIGN.md): p99 at 1,000,000 customers / 10,000,000 events at most
1.3x its value at 10,000 customers.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

import portal  # noqa: E402
from harness import Bench, Server, benchmark, compare  # noqa: E402

BATCH = 20_000
DEFAULT_SCALES = "postgresql:10000:100000,postgresql:100000:1000000,sqlite:10000:100000"
SCALES = os.environ.get("PORTICO_BENCH_SCALES", DEFAULT_SCALES)


def _batches(rows, size=BATCH):
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _copy_text(value) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _insert(model, rows) -> int:
    """Bulk insert: COPY on PostgreSQL, ``executemany`` on SQLite, ``BATCH`` rows at a time.

    Every column is written, from the row or else the field's default, through the
    field's ``db_value`` (so the rows are what the ORM would have written).
    """
    import io
    from engine.db import database
    fields = [f for f in model._meta.sorted_fields if f.name != "id"]
    columns = ", ".join(f'"{f.column_name}"' for f in fields)
    postgres = "postgres" in type(database.obj).__name__.lower()
    conn = database.connection()
    n = 0
    for chunk in _batches(rows):
        values = [[f.db_value(row[f.name] if f.name in row else
                              (f.default() if callable(f.default) else f.default))
                   for f in fields] for row in chunk]
        cur = conn.cursor()
        if postgres:
            text = "".join("\t".join(map(_copy_text, v)) + "\n" for v in values)
            cur.copy_expert(f'COPY "{model._meta.table_name}" ({columns}) FROM STDIN',
                            io.StringIO(text))
        else:
            cur.executemany(f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES '
                            f'({", ".join("?" * len(fields))})', values)
        conn.commit()
        n += len(chunk)
    return n


def generate(customers: int, events: int, seed: int = 7) -> dict:
    """Bulk-insert customers, a mobile service each (two buckets), and rated usage events."""
    from engine.db import database, utcnow
    from engine.models import Customer, Product, Service
    from plugins.usage.models import Bucket, UsageEvent
    rng = random.Random(seed)
    now = utcnow().replace(microsecond=0)
    started = time.perf_counter()
    product = Product.get_or_create(code="scale-mobile", defaults=dict(
        name="Scale Mobile", service_type="mobile", monthly_fee=1000))[0]
    first_customer = (Customer.select(Customer.id).order_by(Customer.id.desc()).scalar() or 0) + 1
    _insert(Customer, ({"number": f"S-{i:08d}", "name": f"Scale Customer {i}"}
                       for i in range(customers)))
    customer_ids = range(first_customer, first_customer + customers)
    first_service = (Service.select(Service.id).order_by(Service.id.desc()).scalar() or 0) + 1
    _insert(Service, ({"customer": c, "product": product.id, "name": f"Mobile {c}",
                       "service_type": "mobile", "monthly_fee": 1000, "period_start": now,
                       "renews_at": now + timedelta(days=30)} for c in customer_ids))
    service_ids = range(first_service, first_service + customers)
    _insert(Bucket, (row for s in service_ids for row in (
        {"service": s, "type": "data", "scope": "any", "initial": 20 * 10 ** 9,
         "remaining": 12 * 10 ** 9, "unit": "bytes"},
        {"service": s, "type": "voice", "scope": "domestic", "initial": 30000,
         "remaining": 20000, "unit": "seconds"})))
    _insert(UsageEvent, ({"event_id": f"scale-{i}", "service": service_ids[rng.randrange(customers)],
                          "type": "data", "quantity": rng.randint(10 ** 5, 10 ** 8),
                          "occurred_at": now - timedelta(seconds=rng.randrange(30 * 86400)),
                          "rated_at": now, "covered": 1} for i in range(events)))
    if "postgres" in type(database.obj).__name__.lower():
        database.execute_sql("ANALYZE")
    return {"customers": customers, "events": events,
            "seconds": round(time.perf_counter() - started, 1)}


def alice_pages(created: dict) -> dict[str, str]:
    return {"dashboard API": "/api/v1/dashboard", "services list": "/services",
            "usage": "/usage", "invoices": "/billing"}


def measure_scale(bench: Bench, kind: str, customers: int, events: int) -> dict:
    with portal.fresh_database(kind, "scale") as url:
        app = portal.open_app(url, bench.workdir / f"scale-{kind}-{customers}")
        from engine import db
        created = portal.seed_demo(app)
        with db.connection():
            made = generate(customers, events)
        app.database.close_all()
        # One connection: the latency of a page, not the queue in front of one worker.
        server = Server(dataclasses.replace(bench, database_url=url), "portico",
                        "/healthz").start()
        bench = dataclasses.replace(bench, connections=1)
        try:
            token = portal.login(server.url)
            heads = portal.auth_headers(token)
            pages = alice_pages(created)
            for label, path in pages.items():
                status, _, body = portal.http("GET", server.url + path, headers=heads["cookie"])
                if status != 200:
                    raise RuntimeError(f"{path} answered {status}: {body[:200]!r}")
            results = compare(bench, {label: server.url + path for label, path in pages.items()},
                              headers={label: heads["cookie"] for label in pages})
        finally:
            server.stop()
    return {"database": kind, **made, "pages": results}


def parse_scales(text: str) -> list[tuple[str, int, int]]:
    out = []
    for part in text.split(","):
        kind, customers, events = part.strip().split(":")
        out.append((kind, int(customers), int(events)))
    return out


@benchmark("scale", "Customer pages at 10,000 customers and more: p50/p99")
def scale(bench: Bench) -> dict:
    runs = [measure_scale(bench, kind, c, e) for kind, c, e in parse_scales(SCALES)]
    lines = ["| database | customers | usage events | bulk load s | page | req/s median | "
             "p50 ms | p99 ms |", "|---|---:|---:|---:|---|---:|---:|---:|"]
    for run in runs:
        for label, r in run["pages"].items():
            lines.append(f"| {run['database']} | {run['customers']:,} | {run['events']:,} | "
                         f"{run['seconds']} | {label} | {r['rps_median']:,.0f} | "
                         f"{r['p50_ms_median']:.1f} | {r['p99_ms_median']:.1f} |")
    ratios, notes = {}, []
    by_db: dict[str, list] = {}
    for run in runs:
        by_db.setdefault(run["database"], []).append(run)
    for kind, group in by_db.items():
        small = min(group, key=lambda r: r["customers"])
        for big in group:
            if big is small:
                continue
            for label in big["pages"]:
                ratio = big["pages"][label]["p99_ms_median"] / small["pages"][label]["p99_ms_median"]
                ratios[f"{kind}_{big['customers']}_vs_{small['customers']}_p99_{label}"] = \
                    round(ratio, 3)
            notes.append(f"{kind}: p99 at {big['customers']:,} customers vs "
                         f"{small['customers']:,}: " + ", ".join(
                             f"{label} {big['pages'][label]['p99_ms_median'] / small['pages'][label]['p99_ms_median']:.2f}×"
                             for label in big["pages"]) + " (target ≤ 1.3× at 1,000,000).")
    return {"results": runs, "ratios": ratios, "table": "\n".join(lines), "notes": notes + [
        f"Scales run: `{SCALES}` (database:customers:events); set PORTICO_BENCH_SCALES to run "
        "others, e.g. `postgresql:1000000:10000000` for DESIGN.md's full size.",
        "Bulk load: PostgreSQL COPY (SQLite: executemany) of 20,000 rows per transaction; "
        "each generated customer has one mobile service with two buckets; the events are rated "
        "data events spread at random over those services in the last 30 days. The pages "
        "measured are alice's (a demo customer) with her session cookie, by wrk over one "
        "connection (latency without queueing)."]}


def main() -> None:
    parser = argparse.ArgumentParser(description="Bulk-generate customers and usage, time pages")
    parser.add_argument("--database", default="postgresql", choices=portal.DATABASES)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=5)
    args = parser.parse_args()
    run = measure_scale(Bench(duration=args.duration, repeat=1, warmup=1), args.database,
                        args.customers, args.events)
    print(f"{run['customers']:,} customers, {run['events']:,} events loaded in {run['seconds']}s")
    for label, r in run["pages"].items():
        print(f"{label:15} p50 {r['p50_ms_median']:.1f} ms  p99 {r['p99_ms_median']:.1f} ms")


if __name__ == "__main__":
    main()
