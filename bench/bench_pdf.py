"""Invoice PDFs: a bill run's rate, stored-PDF downloads (also under load), archives.

On a fresh, demo-seeded PostgreSQL database alice gets monthly invoices until
she has 100 more than ``PORTICO_BENCH_BILL_RUN`` (1,000). Then:

- **one process**: ``documents.store_pdfs`` over the first 100 pending invoices in
  this process, in batches of 10 (render, store, record), invoices/s;
- **bill run**: ``plugins.billing.billrun.run`` over the other 1,000 (and the demo's) on
  ``PORTICO_BENCH_PROCESSES`` (2) spawned processes, as ``portico billing run`` does,
  invoices/s of wall time and CPU seconds per invoice (the children's user+system
  time, which other work on the machine does not inflate as much as wall time);
- **stored download**: ``GET /api/v1/invoices/{id}/pdf`` of 100 stored PDFs from a
  gunicorn worker on the same data folder (local storage: ``sendfile``), one request at a
  time, then by wrk cycling over the 100 with 1 and with ``--connections``
  connections; the same with ``If-None-Match`` (304); and from the database backend;
- **archive**: ``GET /api/v1/invoices/archive?ids=<100>``, first built (and stored),
  then again (streamed from storage).
"""

from __future__ import annotations

import dataclasses
import os
import resource
import statistics
import time
from datetime import timedelta

import portal
from bench_topup import percentile
from harness import BENCH_DIR, Bench, Server, benchmark, wrk

INVOICES = int(os.environ.get("PORTICO_BENCH_BILL_RUN", "1000"))
PROCESSES = int(os.environ.get("PORTICO_BENCH_PROCESSES", "2"))
ARCHIVES = int(os.environ.get("PORTICO_BENCH_ARCHIVES", "5"))
IN_PROCESS = 100


def invoices_up_to(app, customer_id: int, count: int) -> list[int]:
    """Issue monthly invoices (one charge each) until the customer has ``count``."""
    from engine import db
    from plugins.billing import invoicing
    from plugins.billing.models import Invoice

    with db.connection():
        have = Invoice.select().where(Invoice.customer == customer_id).count()
        oldest = (
            Invoice.select()
            .where(Invoice.customer == customer_id)
            .order_by(Invoice.issued_at)
            .first()
            .issued_at
        )
        for n in range(count - have):
            when = oldest - timedelta(days=30 * (n + 1))
            invoicing.record_transaction(
                app,
                customer_id,
                kind="charge",
                amount=2500 + n,
                description=f"Mobile 20GB — bench month {n}",
                occurred_at=when - timedelta(days=1),
                reference=f"bench-pdf:{customer_id}:{n}",
            )
            invoicing.issue_invoice(app, customer_id, issued_at=when, due_days=14, notify=False)
        return [
            i.id
            for i in Invoice.select(Invoice.id)
            .where(Invoice.customer == customer_id)
            .order_by(Invoice.id)
        ]


def in_process(app, ids: list[int]) -> dict:
    """``store_pdfs`` in this process, batches of 10, after one warm-up invoice."""
    from engine import db
    from plugins.billing import documents

    with db.connection():
        documents.store_pdfs(app, ids[:1])  # fonts, templates and WeasyPrint load once
        todo = ids[1:]
        cpu, started = time.process_time(), time.perf_counter()
        for i in range(0, len(todo), 10):
            documents.store_pdfs(app, todo[i : i + 10])
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "invoices": len(todo),
        "seconds": round(wall, 2),
        "per_s": round(len(todo) / wall, 2),
        "cpu_ms_each": round(cpu / len(todo) * 1000, 1),
    }


def bill_run(app, ids: list[int]) -> dict:
    from plugins.billing import billrun

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = billrun.run(app, ids, processes=PROCESSES, batch=10)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if summary.failed or summary.stored != len(ids):
        raise RuntimeError(f"bill run: {summary.stored} of {len(ids)}, failed {summary.failed[:3]}")
    return {
        "invoices": summary.stored,
        "processes": PROCESSES,
        "seconds": round(summary.seconds, 2),
        "per_s": round(summary.rate, 2),
        "cpu_ms_each": round(cpu / summary.stored * 1000, 1),
        "per_cpu_s": round(summary.stored / cpu, 2),
    }


def timed_get(url: str, headers: dict, expect: int = 200) -> tuple[float, int, dict]:
    started = time.perf_counter()
    status, got, body = portal.http("GET", url, headers=headers, timeout=300)
    elapsed = (time.perf_counter() - started) * 1000
    if status != expect:
        raise RuntimeError(f"{url} answered {status}: {body[:200]!r}")
    return elapsed, len(body), {k.lower(): v for k, v in got.items()}


def stats(samples: list[float]) -> dict:
    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 50), 1),
        "p99_ms": round(percentile(samples, 99), 1),
        "mean_ms": round(statistics.mean(samples), 1),
    }


def under_load(
    bench: Bench, server: Server, paths: list[str], token: str, connections: int
) -> dict:
    """wrk cycling over ``paths`` with ``connections`` connections: the median of the runs."""
    env = {"BENCH_PATHS": ",".join(paths), "BENCH_TOKEN": token}
    script = BENCH_DIR / "wrk_paths.lua"
    wrk(bench, server.url, duration=bench.warmup, connections=connections, script=script, env=env)
    runs = [
        wrk(bench, server.url, connections=connections, script=script, env=env)
        for _ in range(bench.repeat)
    ]
    if any(r.errors for r in runs):
        raise RuntimeError(f"wrk: {sum(r.errors for r in runs)} errors or non-2xx answers")
    return {
        "connections": connections,
        "rps": round(statistics.median(r.rps for r in runs)),
        "p50_ms": round(statistics.median(r.p50_ms for r in runs), 2),
        "p99_ms": round(statistics.median(r.p99_ms for r in runs), 2),
        "requests": sum(r.requests for r in runs),
    }


def downloads(bench: Bench, url: str, app, ids: list[int], storage: str) -> dict:
    """Stored downloads and archives from one gunicorn worker serving ``storage``."""
    server = Server(
        dataclasses.replace(bench, database_url=url, workers=1, threads=1),
        "portico",
        "/healthz",
        args=["--data-dir", str(app.settings.data_path), "--storage", storage],
    ).start()
    try:
        token = portal.login(server.url)
        heads = portal.auth_headers(token)["cookie"]
        paths = [f"/api/v1/invoices/{i}/pdf" for i in ids]
        out = {
            "stored_download": stats(
                [timed_get(server.url + p, heads)[0] for _ in range(3) for p in paths]
            )
        }
        etags = {p: timed_get(server.url + p, heads)[2]["etag"] for p in paths}
        out["not_modified"] = stats(
            [
                timed_get(server.url + p, {**heads, "If-None-Match": e}, 304)[0]
                for _ in range(3)
                for p, e in etags.items()
            ]
        )
        out["wrk"] = [
            under_load(bench, server, paths, token, n) for n in sorted({1, 4, bench.connections})
        ]
        if storage == "local":
            built, stored = [], []
            for n in range(ARCHIVES):  # a new selection each time: built, then stored
                chosen = ids[n : n + 100]
                archive = f"{server.url}/api/v1/invoices/archive?ids={','.join(map(str, chosen))}"
                built.append(timed_get(archive, heads))
                stored.append(timed_get(archive, heads))
            out["archive_built"] = stats([b[0] for b in built])
            out["archive_stored"] = stats([s[0] for s in stored])
            out["archive_bytes"] = built[0][1]
            out["pdf_bytes_mean"] = round(
                statistics.mean(timed_get(server.url + p, heads)[1] for p in paths)
            )
        return out
    finally:
        server.stop()


@benchmark("pdf", "Invoice PDFs: bill run rate, stored downloads (also under load), archives")
def pdf(bench: Bench) -> dict:
    from engine import db
    from engine.storage import DatabaseStorage, copy
    from plugins.billing import documents

    with portal.fresh_database("postgresql", "pdf") as url:
        app = portal.open_app(url, bench.workdir / "pdf")
        created = portal.seed_demo(app)
        invoices_up_to(app, created["customers"]["alice"].id, INVOICES + IN_PROCESS)
        with db.connection():
            pending = [i.id for i in documents.pending()]
        one = in_process(app, pending[:IN_PROCESS])
        app.database.close_all()
        run = bill_run(app, pending[IN_PROCESS:])
        db.bind(app.database)
        sample = pending[-100:]
        local = downloads(bench, url, app, sample, "local")
        with db.connection():  # the same files in the database backend
            copy(app.storage, DatabaseStorage(), "invoices/")
        app.database.close_all()
        database = downloads(bench, url, app, sample, "database")
    results = {"in_process": one, "bill_run": run, "local": local, "database": database}

    def row(label, s):
        return f"| {label} | {s['n']} | {s['p50_ms']} | {s['p99_ms']} | {s['mean_ms']} |"

    def wrk_row(label, w):
        return (
            f"| {label} | {w['connections']} | {w['rps']:,} | {w['p50_ms']} | "
            f"{w['p99_ms']} | {w['requests']:,} |"
        )

    table = "\n".join(
        [
            "| bill run | invoices | processes | seconds | invoices/s | CPU ms per invoice |",
            "|---|---:|---:|---:|---:|---:|",
            f"| one process (store_pdfs, batches of 10) | {one['invoices']} | 1 | {one['seconds']} "
            f"| {one['per_s']} | {one['cpu_ms_each']} |",
            f"| `billrun.run` (= `portico billing run`) | {run['invoices']} | {run['processes']} | "
            f"{run['seconds']} | **{run['per_s']}** | {run['cpu_ms_each']} |",
            "",
            "| request (one client, one at a time) | n | p50 ms | p99 ms | mean ms |",
            "|---|---:|---:|---:|---:|",
            row("stored PDF, local storage (sendfile)", local["stored_download"]),
            row("stored PDF, If-None-Match → 304", local["not_modified"]),
            row("stored PDF, database storage", database["stored_download"]),
            row("archive of 100, built and stored", local["archive_built"]),
            row("archive of 100, again (from storage)", local["archive_stored"]),
            "",
            "| stored PDFs under wrk (cycling over 100) | connections | req/s | p50 ms | p99 ms "
            "| requests |",
            "|---|---:|---:|---:|---:|---:|",
            *(wrk_row("local storage", w) for w in local["wrk"]),
            *(wrk_row("database storage", w) for w in database["wrk"]),
        ]
    )
    return {
        "results": results,
        "table": table,
        "notes": [
            f"Bill run: {run['per_cpu_s']} invoices per CPU-second of the rendering processes: "
            f"with {PROCESSES} cores to itself that is the rate a run reaches (target ≥ 25/s).",
            f"PDFs average {local['pdf_bytes_mean']:,} bytes; an archive of 100 is "
            f"{local['archive_bytes']:,} bytes.",
            "Downloads: one sync gunicorn worker on CPU 0 with alice's session cookie; wrk on CPU "
            "1. With one connection p99 is the service time; with more, requests queue behind "
            "one worker, so p99 grows with the connection count.",
            "The database-storage rows serve the same files copied into `stored_file` "
            "(`engine.storage.copy`).",
        ],
    }
