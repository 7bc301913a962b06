"""OPS-5: many nodes on one PostgreSQL and one Redis, as real processes.

Two ``portico scheduler`` processes: each periodic run is recorded and run once. Two
``portico serve`` nodes and two ``portico worker`` processes: a session, the rate limits,
the invoice PDFs and the outbox are shared, and each message runs once.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from billing_helpers import sandbox_card

from engine import db
from engine.models import OutboxMessage
from engine.testing import DEMO_PASSWORD
from jobs_plugin.harness import (  # noqa: F401  (fixtures)
    REDIS_URL,
    RunningWorker,
    free_port,
    install_entry_point,
    jobs_app,
    jobs_plugin,
    portico,
    portico_env,
    queues,
    runs,
    stop,
    wait_for,
)
from topups_helpers import service_of, topup_catalogue

ON_POSTGRES = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
TICK = "jobs_plugin.tasks.tick"


def text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


@ON_POSTGRES
@pytest.mark.redis
@pytest.mark.spec("OPS-5")
def test_two_schedulers_run_each_periodic_job_once_per_due_time(jobs_app, queues, tmp_path):
    app = jobs_app(broker_url=queues.url("redis", tmp_path))
    env = portico_env(app, install_entry_point(tmp_path / "site"))
    logs = [tmp_path / f"scheduler-{n}.log" for n in (1, 2)]
    schedulers = [portico("scheduler", env=env, log=log) for log in logs]
    scheduled = re.compile(
        r"scheduled [^\n]*jobs_plugin\.tasks\.tick[^\n]* at "
        r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d)"
    )
    try:
        with RunningWorker(app):
            # Each records the run due at its start, then the next minute's from its clock.
            wait_for(
                lambda: all(len(scheduled.findall(text(log))) >= 2 for log in logs),
                timeout=150,
                what="both schedulers to send two minutes' runs; logs:\n"
                + "\n".join(text(log) for log in logs),
            )
            minutes = {f"{d} {t}" for log in logs for d, t in scheduled.findall(text(log))}
            wait_for(
                lambda: len(runs("tick")) >= len(minutes),
                timeout=60,
                what="the worker to run every minute's tick",
            )
            app.tasks.broker.join(queues.queue, timeout=30_000)
    finally:
        codes = [stop(s) for s in schedulers]
    assert codes == [0, 0], [text(log) for log in logs]
    from jobs_plugin.models import JobRun

    with db.connection():
        ran = Counter(
            r.scheduled_at[:16].replace("T", " ")
            for r in JobRun.select().where(JobRun.name == "tick")
        )
        rows = OutboxMessage.select().where(OutboxMessage.actor == TICK).count()
    assert set(ran) == minutes and set(ran.values()) == {1}, ran  # once per due time
    assert rows == len(minutes)  # one outbox row per minute, whichever scheduler wrote it


def call(
    url: str, method: str = "GET", body: dict | None = None, headers: dict | None = None
) -> tuple:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={**({"Content-Type": "application/json"} if data else {}), **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers
    except OSError:
        return 0, b"", {}


def wait_until_up(base: str, proc, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while call(base + "/livez")[0] != 200:
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{base} did not answer:\n{text(log)}")
        time.sleep(0.1)


@ON_POSTGRES
@pytest.mark.redis
@pytest.mark.spec("OPS-5")
def test_two_web_nodes_and_two_workers_share_sessions_limits_files_and_the_outbox(
    jobs_app, queues, tmp_path
):
    from engine.core.demo import seed
    from engine.models import Customer
    from plugins.billing.models import Invoice

    app = jobs_app(broker_url=queues.url("redis", tmp_path), storage={"backend": "database"})
    seed(app, {})
    alice = Customer.get(Customer.number == "C-100001")
    prepaid = service_of(alice, "prepaid")
    sandbox_card(app, alice.id)
    product = topup_catalogue(app)["prepaid-credit-5"]
    env = portico_env(
        app,
        install_entry_point(tmp_path / "site"),
        **{
            "PORTICO_PLUGINS_DISABLED": "acme-weather",  # an installed example, not migrated here
            "PORTICO_STORAGE_BACKEND": "database",
            "PORTICO_SECURITY_RATE_LIMIT_STORAGE": REDIS_URL,
            "PORTICO_IDENTITY_LOGIN_ACCOUNT_RATE": "2/minute",
            "PORTICO_IDENTITY_LOGIN_RATE": "1000/minute",
        },
    )
    with db.connection():  # work for the outbox, relayed by whichever node gets to it first
        ids = [app.tasks.enqueue("jobs_plugin.tasks.record", str(i)) for i in range(100)]
    ports = [free_port(), free_port()]
    procs, logs = [], []
    try:
        for n, port in enumerate(ports):
            logs.append(tmp_path / f"web-{n}.log")
            procs.append(
                portico("serve", "--port", str(port), "--workers", "1", env=env, log=logs[-1])
            )
        for n in range(2):
            logs.append(tmp_path / f"worker-{n}.log")
            procs.append(portico("worker", "--threads", "2", env=env, log=logs[-1]))
        a, b = (f"http://127.0.0.1:{port}" for port in ports)
        for base, proc, log in zip((a, b), procs, logs):
            wait_until_up(base, proc, log)

        # A session signed in on node A works on node B.
        status, body, headers = call(
            a + "/api/v1/auth/login",
            "POST",
            {"email": "alice@example.com", "password": DEMO_PASSWORD},
        )
        assert status == 200, body
        cookie = "; ".join(c.split(";", 1)[0] for c in headers.get_all("Set-Cookie"))
        bearer = {"Authorization": f"Bearer {json.loads(body)['token']}"}
        status, body, _ = call(b + "/api/v1/me", headers={"Cookie": cookie})
        assert status == 200 and json.loads(body)["email"] == "alice@example.com", body

        # The rate limit is shared (Redis): two tries on A and B use up the minute's two.
        who = f"{queues.token}@example.com"
        wrong = {"email": who, "password": "Wrong-Pass-2026!"}
        assert [call(base + "/api/v1/auth/login", "POST", wrong)[0] for base in (a, b)] == [
            401,
            401,
        ]
        assert call(a + "/api/v1/auth/login", "POST", wrong)[0] == 429
        with db.connection():  # counted in Redis, not in the (also shared) database
            from plugins.identity.models import RateCounter

            assert not RateCounter.select().exists()

        # A receipt's PDF, rendered by a worker into the shared storage, served by both nodes.
        status, body, _ = call(
            b + f"/api/v1/services/{prepaid.id}/topups",
            "POST",
            {"product_id": product.id},
            {**bearer, "Idempotency-Key": queues.token},
        )
        assert status == 201, body
        invoice_id = json.loads(body)["invoice"]["id"]
        invoice = wait_for(
            lambda: Invoice.get_or_none((Invoice.id == invoice_id) & (Invoice.pdf_path != "")),
            timeout=120,
            what="a worker to render the receipt's PDF",
        )
        served = [
            call(base + f"/api/v1/invoices/{invoice_id}/pdf", headers=bearer) for base in (a, b)
        ]
        assert [s[0] for s in served] == [200, 200]
        assert served[0][1] == served[1][1] and served[0][1].startswith(b"%PDF")
        assert hashlib.sha256(served[0][1]).hexdigest() == invoice.pdf_sha256

        # The outbox relays each message once, however many nodes relay.
        wait_for(lambda: len(runs("record")) >= 100, timeout=120, what="the outbox's work")
        app.tasks.broker.join(queues.queue, timeout=30_000)
    finally:
        codes = [stop(p) for p in procs]
    assert codes == [0] * 4, [text(log)[-2000:] for log in logs]
    assert Counter(runs("record")) == Counter({str(i): 1 for i in range(100)})
    from jobs_plugin.models import JobRun

    with db.connection():
        assert {r.message_id for r in JobRun.select().where(JobRun.name == "record")} == set(ids)
        assert len({r.pid for r in JobRun.select().where(JobRun.name == "record")}) == 2
