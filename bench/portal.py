"""A seeded portal for the benchmarks that need real customers: fresh databases, login, worker memory.

``fresh_database("postgresql" | "sqlite")`` yields the URL of an empty
database made for this benchmark alone (a new PostgreSQL database it drops
afterwards, or a SQLite file in a temporary folder it removes);
``open_app(url, workdir)`` builds the migrated portal on it; ``seed_demo``
fills it with the demo customers (services, buckets, a year of invoices);
``login`` signs a demo customer in over HTTP; ``worker_rss_mb`` reads the
resident memory of a gunicorn server's workers from ``/proc``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

PG_ADMIN_URL = os.environ.get("PORTICO_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
DEMO_PASSWORD = "Bench-Passw0rd-7!"
SECRET_KEY = "bench-secret-key-" + "x" * 32  # the key bench/serve.py gives every server
DATABASES = ("postgresql", "sqlite")


def _admin(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN_URL, connect_timeout=5)
    conn.autocommit = True
    conn.cursor().execute(sql)
    conn.close()


@contextlib.contextmanager
def fresh_database(kind: str, tag: str = "bench") -> Iterator[str]:
    """An empty database of ``kind`` for one benchmark; dropped (or deleted) afterwards."""
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix=f"portico-{tag}-"))
        try:
            yield f"sqlite:///{folder / 'portico.sqlite3'}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    name = f"portico_{tag}_{secrets.token_hex(4)}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield urlparse(PG_ADMIN_URL)._replace(path="/" + name).geturl()
    finally:
        from engine import db

        if db.database.obj is not None:
            db.database.obj.close_all()
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def open_app(database_url: str, workdir: Path, **overrides):
    """The migrated portal on ``database_url``, bound as the current database."""
    from engine import db, migrations
    from engine.app import create_app
    from engine.settings import load_settings

    workdir.mkdir(parents=True, exist_ok=True)
    values = {
        "data_dir": str(workdir / "data"),
        "database_url": database_url,
        "broker_url": f"sqlite:///{workdir / 'queue.sqlite3'}",
        "secret_key": SECRET_KEY,
        # a benchmark portal: the sandbox and .eml mail, as the demo (OPS-2)
        "base_url": "http://127.0.0.1:8000",
        "mail": {"allow_file_backend": True},
        "sandbox": {"allow_outside_demo": True},
        "plugins": {"entry_points": False},
        **overrides,
    }
    app = create_app(load_settings(None, environ={}, overrides=values))
    migrations.migrate(app)
    db.bind(app.database)
    return app


def seed_demo(app) -> dict:
    """The demo customers with services, buckets, usage and a year of invoices."""
    from engine.demo import seed_demo as seed

    os.environ["PORTICO_DEMO_PASSWORD"] = DEMO_PASSWORD
    created = seed(app)
    app.database.close_all()  # no connection crosses into the servers' forks
    return created


def http(
    method: str,
    url: str,
    body: dict | None = None,
    headers: dict | None = None,
    timeout: float = 30,
) -> tuple[int, dict, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={**({"Content-Type": "application/json"} if data else {}), **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def login(base_url: str, email: str = "alice@example.com") -> str:
    """Sign in through ``POST /api/v1/auth/login``; the token is also the session cookie's value."""
    status, _, body = http(
        "POST", base_url + "/api/v1/auth/login", {"email": email, "password": DEMO_PASSWORD}
    )
    if status != 200:
        raise RuntimeError(f"login as {email} answered {status}: {body[:300]!r}")
    return json.loads(body)["token"]


def auth_headers(token: str) -> dict[str, dict[str, str]]:
    """The two ways a customer's browser or app authenticates: bearer and session cookie."""
    return {
        "bearer": {"Authorization": f"Bearer {token}"},
        "cookie": {"Cookie": f"portico_session={token}"},
    }


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker_rss_mb(server) -> dict[int, float]:
    """Resident memory (MB) of each gunicorn worker of a ``harness.Server``."""
    return {pid: round(rss_mb(pid), 1) for pid in children(server.proc.pid)}
