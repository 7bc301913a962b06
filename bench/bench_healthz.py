"""``/healthz`` on Portico against a bare Falcon hello and a raw WSGI callable (issue 2)."""

from __future__ import annotations

from harness import Bench, benchmark, compare, rps_table, servers


@benchmark("healthz", "GET /healthz on Portico vs a bare Falcon hello vs a raw WSGI callable")
def healthz(bench: Bench) -> dict:
    apps = {
        "raw WSGI": ("raw", "/"),
        "Falcon hello": ("falcon", "/"),
        "Portico /healthz": ("portico", "/healthz"),
    }
    with servers(bench, apps) as up:
        results = compare(bench, {label: up[label].url + path for label, (_, path) in apps.items()})
    portico, falcon, raw = (
        results[label]["rps_median"] for label in ("Portico /healthz", "Falcon hello", "raw WSGI")
    )
    return {
        "results": results,
        "ratios": {
            "portico_healthz_vs_falcon_hello": round(portico / falcon, 3),
            "falcon_hello_vs_raw_wsgi": round(falcon / raw, 3),
        },
        "table": rps_table(results, baseline="Falcon hello"),
        "notes": [
            "Portico's /healthz is not a hello: per request it opens a pooled database "
            "connection, runs `SELECT 1`, pings the broker and counts the outbox, and the "
            "middleware negotiates the locale, runs the authentication hook and sets the "
            "security headers.",
            "Database and broker: "
            + (bench.database_url or "the embedded defaults (SQLite files, WAL)")
            + ".",
        ],
    }
