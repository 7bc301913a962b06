"""The authenticated dashboard, API and HTML, as ratios of a bare Falcon hello (issue 9).

For each database (PostgreSQL, then SQLite) a fresh database is seeded with
the demo customers (services, buckets, usage, a year of invoices) and served
by Portico under the same gunicorn settings as the Falcon hello. Alice signs
in through ``POST /api/v1/auth/login``; wrk then requests, interleaved:

- the bare Falcon hello (the baseline of DESIGN.md's targets);
- ``GET /api/v1/dashboard`` with ``Authorization: Bearer <token>``;
- ``GET /`` (the themed HTML dashboard) with the ``portico_session`` cookie.

Targets: API >= 25% of hello; HTML >= 80% of the API.
"""

from __future__ import annotations

import dataclasses
import json

import portal
from harness import Bench, Server, benchmark, compare, rps_table, servers


def check_pages(base: str, token: str) -> dict:
    """Both pages answer 200 with alice's data before any load goes at them."""
    heads = portal.auth_headers(token)
    status, _, body = portal.http("GET", base + "/api/v1/dashboard", headers=heads["bearer"])
    if status != 200:
        raise RuntimeError(f"/api/v1/dashboard answered {status}: {body[:300]!r}")
    api = json.loads(body)
    status, _, html = portal.http("GET", base + "/", headers=heads["cookie"])
    if status != 200 or b"C-100001" not in html:
        raise RuntimeError(f"/ answered {status} without alice's customer number")
    return {"api_bytes": len(body), "html_bytes": len(html), "api_keys": sorted(api)}


def measure_on(bench: Bench, kind: str, hello_url: str) -> tuple[dict, dict]:
    with portal.fresh_database(kind, "dash") as url:
        app = portal.open_app(url, bench.workdir / f"dashboard-{kind}")
        portal.seed_demo(app)
        server = Server(dataclasses.replace(bench, database_url=url), "portico", "/healthz").start()
        try:
            token = portal.login(server.url)
            shape = check_pages(server.url, token)
            heads = portal.auth_headers(token)
            results = compare(
                bench,
                {
                    "Falcon hello": hello_url,
                    "dashboard API": server.url + "/api/v1/dashboard",
                    "HTML dashboard": server.url + "/",
                },
                headers={"dashboard API": heads["bearer"], "HTML dashboard": heads["cookie"]},
            )
        finally:
            server.stop()
    return results, shape


@benchmark("dashboard", "Authenticated dashboard (API and HTML) vs a bare Falcon hello")
def dashboard(bench: Bench) -> dict:
    all_results, ratios, tables, shapes = {}, {}, [], {}
    with servers(bench, {"hello": ("falcon", "/")}) as up:
        for kind in portal.DATABASES:
            results, shapes[kind] = measure_on(bench, kind, up["hello"].url + "/")
            hello = results["Falcon hello"]["rps_median"]
            api = results["dashboard API"]["rps_median"]
            html = results["HTML dashboard"]["rps_median"]
            ratios[f"{kind}_api_vs_hello"] = round(api / hello, 3)
            ratios[f"{kind}_html_vs_api"] = round(html / api, 3)
            all_results[kind] = results
            tables.append(
                f"**{'PostgreSQL' if kind == 'postgresql' else 'SQLite'}**\n\n"
                + rps_table(results, baseline="Falcon hello")
            )
    verdicts = [
        f"{kind}: API {ratios[f'{kind}_api_vs_hello']:.0%} of hello (target ≥ 25%: "
        f"{'holds' if ratios[f'{kind}_api_vs_hello'] >= 0.25 else 'missed'}); HTML "
        f"{ratios[f'{kind}_html_vs_api']:.0%} of API (target ≥ 80%: "
        f"{'holds' if ratios[f'{kind}_html_vs_api'] >= 0.80 else 'missed'})"
        for kind in portal.DATABASES
    ]
    pg = shapes["postgresql"]
    return {
        "results": all_results,
        "ratios": ratios,
        "shapes": shapes,
        "table": "\n\n".join(tables),
        "notes": verdicts
        + [
            "Demo data: alice has 4 services (mobile, broadband, TV, prepaid) with their "
            "buckets and usage, two saved cards and 12 monthly invoices; she signs in once "
            "through `POST /api/v1/auth/login` and every request carries that session "
            "(bearer header for the API, `portico_session` cookie for the HTML).",
            f"Response sizes: API {pg['api_bytes']:,} bytes, HTML {pg['html_bytes']:,} bytes.",
            "One Falcon hello server serves as the baseline for both databases; it is measured "
            "again, interleaved, in each database's run.",
        ],
    }
