"""Invoice PDFs: rendering rate, stored-PDF download latency, a 100-invoice archive (issue 9).

On a fresh, demo-seeded PostgreSQL database alice gets monthly invoices until
she has 100. Then:

- **render rate**: ``plugins.billing.documents.render_pdf`` in this process,
  one invoice after another (WeasyPrint from the theme's template), invoices/s;
- **first download**: ``GET /billing/invoices/{id}/pdf`` of each of the 100 from
  a gunicorn worker that has not stored it yet (render + store + send);
- **stored download**: the same requests again, now served from storage;
- **archive**: ``GET /billing/archive?ids=<all 100>``, the zip streamed whole.
"""
from __future__ import annotations

import dataclasses
import os
import statistics
import time
from datetime import timedelta

import portal
from bench_topup import percentile
from harness import Bench, Server, benchmark

INVOICES = 100
RENDERS = int(os.environ.get("PORTICO_BENCH_PDF_RENDERS", "20"))
ARCHIVES = int(os.environ.get("PORTICO_BENCH_ARCHIVES", "5"))


def invoices_up_to(app, customer_id: int, count: int) -> list[int]:
    """Issue monthly invoices (one charge each) until the customer has ``count``."""
    from engine import db
    from plugins.billing import invoicing
    from plugins.billing.models import Invoice
    with db.connection():
        have = Invoice.select().where(Invoice.customer == customer_id).count()
        oldest = Invoice.select().where(Invoice.customer == customer_id).order_by(
            Invoice.issued_at).first().issued_at
        for n in range(count - have):
            when = oldest - timedelta(days=30 * (n + 1))
            invoicing.record_transaction(app, customer_id, kind="charge", amount=2500 + n,
                                         description=f"Mobile 20GB — bench month {n}",
                                         occurred_at=when - timedelta(days=1),
                                         reference=f"bench-pdf:{customer_id}:{n}")
            invoicing.issue_invoice(app, customer_id, issued_at=when, due_days=14, notify=False)
        return [i.id for i in Invoice.select(Invoice.id).where(Invoice.customer == customer_id)
                .order_by(Invoice.id)]


def render_rate(app, ids: list[int]) -> float:
    from engine import db
    from plugins.billing.documents import render_pdf
    from plugins.billing.models import Invoice
    with db.connection():
        render_pdf(app, Invoice.get_by_id(ids[0]))  # fonts and templates load once
        started = time.perf_counter()
        for invoice_id in ids[:RENDERS]:
            render_pdf(app, Invoice.get_by_id(invoice_id))
        return RENDERS / (time.perf_counter() - started)


def timed_get(url: str, headers: dict, expect: str) -> tuple[float, int]:
    started = time.perf_counter()
    status, got, body = portal.http("GET", url, headers=headers, timeout=300)
    elapsed = (time.perf_counter() - started) * 1000
    kind = {k.lower(): v for k, v in got.items()}.get("content-type", "")
    if status != 200 or not kind.startswith(expect):
        raise RuntimeError(f"{url} answered {status} {kind}: {body[:200]!r}")
    return elapsed, len(body)


def stats(samples: list[float]) -> dict:
    return {"n": len(samples), "p50_ms": round(percentile(samples, 50), 1),
            "p99_ms": round(percentile(samples, 99), 1),
            "mean_ms": round(statistics.mean(samples), 1)}


@benchmark("pdf", "Invoice PDFs: render rate, stored download latency, a 100-invoice archive")
def pdf(bench: Bench) -> dict:
    with portal.fresh_database("postgresql", "pdf") as url:
        app = portal.open_app(url, bench.workdir / "pdf")
        created = portal.seed_demo(app)
        ids = invoices_up_to(app, created["customers"]["alice"].id, INVOICES)
        rate = render_rate(app, ids)
        app.database.close_all()
        server = Server(dataclasses.replace(bench, database_url=url, workers=1, threads=1),
                        "portico", "/healthz").start()
        try:
            heads = portal.auth_headers(portal.login(server.url))["cookie"]
            first, sizes = zip(*(timed_get(f"{server.url}/billing/invoices/{i}/pdf", heads,
                                           "application/pdf") for i in ids))
            stored = [timed_get(f"{server.url}/billing/invoices/{i}/pdf", heads,
                                "application/pdf")[0] for _ in range(3) for i in ids]
            archive_url = f"{server.url}/billing/archive?ids={','.join(map(str, ids))}"
            archives = [timed_get(archive_url, heads, "application/zip") for _ in range(ARCHIVES)]
        finally:
            server.stop()
    results = {"invoices": len(ids), "render_per_s": round(rate, 2),
               "first_download": stats(list(first)), "stored_download": stats(stored),
               "archive_100": stats([a[0] for a in archives]),
               "pdf_bytes_mean": round(statistics.mean(sizes)),
               "archive_bytes": archives[0][1]}
    table = "\n".join([
        "| measurement | n | p50 ms | p99 ms | mean ms |", "|---|---:|---:|---:|---:|",
        *(f"| {label} | {results[key]['n']} | {results[key]['p50_ms']} | "
          f"{results[key]['p99_ms']} | {results[key]['mean_ms']} |"
          for label, key in (("first download (render + store + send)", "first_download"),
                             ("stored PDF download", "stored_download"),
                             (f"archive of {len(ids)} invoices (zip)", "archive_100"))),
        "", f"Render rate (in process, {RENDERS} invoices one after another): "
            f"**{results['render_per_s']} invoices/s**."])
    return {"results": results, "table": table, "notes": [
        f"PDFs average {results['pdf_bytes_mean']:,} bytes; the archive of {len(ids)} is "
        f"{results['archive_bytes']:,} bytes.",
        "Downloads go through one sync gunicorn worker with alice's session cookie, one "
        "request at a time; the stored downloads are 3 passes over all 100."]}
