"""Resident memory of a web worker before and after 10,000 customer requests (issue 9).

Portico is served on a fresh, demo-seeded PostgreSQL database by one gunicorn
worker; alice signs in, and wrk (with ``bench/wrk_paths.lua``) sends at least
``PORTICO_BENCH_MEMORY_REQUESTS`` (10,000) requests that cycle through her pages: the dashboard (API and
HTML), services (list, one service, its usage), usage, billing (list, one
invoice, transactions), top-up, account and ``/api/v1/me``. The worker's RSS
is read from ``/proc`` at start, after a first pass over every page, and at
the end. Target: < 150 MB.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from pathlib import Path

import portal
from harness import BENCH_DIR, Bench, Server, benchmark, taskset

REQUESTS = int(os.environ.get("PORTICO_BENCH_MEMORY_REQUESTS", "10000"))
TARGET_MB = 150


def alice_paths(created: dict) -> list[str]:
    alice = created["customers"]["alice"].id
    service = next(s.id for s in created["services"].values() if s.customer_id == alice)
    invoice = created["invoices"]["alice"][-1].id
    return [
        "/api/v1/dashboard",
        "/",
        "/services",
        f"/services/{service}",
        f"/services/{service}/usage",
        "/usage",
        "/api/v1/services",
        f"/api/v1/services/{service}/balances",
        "/billing",
        f"/billing/invoices/{invoice}",
        "/billing/transactions",
        "/topup",
        "/account",
        "/api/v1/me",
    ]


def wrk_requests(bench: Bench, base: str, paths: list[str], token: str, count: int) -> dict:
    """At least ``count`` requests cycling through ``paths``, in short wrk runs."""
    env = {**os.environ, "BENCH_PATHS": ",".join(paths), "BENCH_TOKEN": token}
    cmd = [
        *taskset(bench.client_cpus),
        "wrk",
        "-t1",
        "-c4",
        "-d3s",
        "-s",
        str(BENCH_DIR / "wrk_paths.lua"),
        base,
    ]
    done = {"requests": 0, "seconds": 0.0, "non_2xx": 0}
    while done["requests"] < count:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
        found = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        done["requests"] += int(found[1])
        done["seconds"] += float(found[2]) / (1000 if found[3] == "ms" else 1)
        done["non_2xx"] += int(bad[1]) if bad else 0
    done["seconds"] = round(done["seconds"], 1)
    return done


@benchmark("memory", "Resident memory per web worker after 10,000 customer requests")
def memory(bench: Bench) -> dict:
    with portal.fresh_database("postgresql", "mem") as url:
        app = portal.open_app(url, bench.workdir / "memory")
        created = portal.seed_demo(app)
        paths = alice_paths(created)
        server = Server(
            dataclasses.replace(bench, database_url=url, workers=1, threads=1),
            "portico",
            "/healthz",
        ).start()
        try:
            token = portal.login(server.url)
            for path in paths:  # every page answers before it is measured
                status, _, _ = portal.http(
                    "GET",
                    server.url + path,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Cookie": f"portico_session={token}",
                    },
                )
                if status != 200:
                    raise RuntimeError(f"{path} answered {status}")
            workers = portal.children(server.proc.pid)
            first = {pid: portal.rss_mb(pid) for pid in workers}
            warm = wrk_requests(bench, server.url, paths, token, len(paths) * 10)
            after_warm = {pid: portal.rss_mb(pid) for pid in workers}
            run = wrk_requests(bench, server.url, paths, token, REQUESTS)
            final = {pid: portal.rss_mb(pid) for pid in workers}
            peak = {pid: _peak_mb(pid) for pid in workers}
        finally:
            server.stop()
    pid = workers[0]
    results = {
        "paths": paths,
        "requests": run["requests"] + warm["requests"] + len(paths),
        "non_2xx": run["non_2xx"] + warm["non_2xx"],
        "seconds": run["seconds"],
        "rss_mb_after_start": round(first[pid], 1),
        "rss_mb_after_warmup": round(after_warm[pid], 1),
        "rss_mb_after_run": round(final[pid], 1),
        "peak_rss_mb": round(peak[pid], 1),
    }
    holds = results["rss_mb_after_run"] < TARGET_MB
    table = "\n".join(
        [
            "| moment | worker RSS MB |",
            "|---|---:|",
            f"| after start, one request per page | {results['rss_mb_after_start']:.1f} |",
            f"| after {warm['requests']:,} more requests | {results['rss_mb_after_warmup']:.1f} |",
            f"| after {results['requests']:,} requests in all | {results['rss_mb_after_run']:.1f} |",
            f"| peak (VmHWM, includes the master's peak before the fork) | "
            f"{results['peak_rss_mb']:.1f} |",
        ]
    )
    return {
        "results": results,
        "table": table,
        "notes": [
            f"Target < {TARGET_MB} MB per worker: {'holds' if holds else 'missed'} "
            f"({results['rss_mb_after_run']:.1f} MB after the run; RSS counts pages still shared "
            "with the gunicorn master).",
            f"{results['requests']:,} requests ({results['non_2xx']} not 2xx) cycling through "
            f"{len(paths)} of alice's pages: " + ", ".join(f"`{p}`" for p in paths) + ".",
            f"One sync gunicorn worker on PostgreSQL; the measured {REQUESTS:,} took "
            f"{results['seconds']}s.",
        ],
    }


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
