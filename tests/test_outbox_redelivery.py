"""OPS-6: Redis loses its data in the middle of 200 purchases, and nothing is lost.

A real ``portico worker`` process on a real Redis (a namespace of this test's own) and
PostgreSQL. Its two threads are held by two blocking tasks while the first 100 purchases
queue their work (provisioning, emails, receipt PDFs); then every key of the namespace is
deleted, the threads are released and 100 more purchases follow. Once the broker has nothing
left, the outbox's sweep sends the lost messages again; afterwards every provisioning and
every notification has happened exactly once.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from dramatiq.message import Message

from billing_helpers import customer, sandbox_card
from engine import db
from engine.models import AuditEvent, OutboxMessage
from engine.testing import PrincipalHeader
from jobs_plugin.harness import (  # noqa: F401  (fixtures)
    install_entry_point,
    jobs_plugin,
    portico,
    portico_env,
    queues,
    runs,
    stop,
    wait_for,
)
from plugins.addons.models import ServiceAddon
from plugins.billing.models import Invoice
from plugins.email.models import EmailDelivery
from plugins.topups.models import TopupPurchase
from topups_helpers import addon_catalogue, api_for, service_of, topup_catalogue

ON_POSTGRES = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
PURCHASES = 200  # half top-ups, half add-on orders (a quarter paid first, a quarter free)


def in_redis(app) -> set[str]:
    """The message ids Redis holds (queued, delayed or being run; not dead-lettered)."""
    broker = app.tasks.broker
    ids = set()
    for key in broker.client.scan_iter(match=f"{broker.namespace}:*.msgs", count=500):
        if key.decode().endswith(".XQ.msgs"):
            continue
        ids |= {Message.decode(body).message_id for body in broker.client.hvals(key)}
    return ids


def lost(app) -> list[str] | None:
    """The unfinished messages once Redis holds none of them (None while it still does)."""
    rows = list(OutboxMessage.select().where(OutboxMessage.done_at.is_null()))
    if any(r.sent_at is None for r in rows):
        return None  # a relay has yet to send it
    ids = {r.message_id for r in rows}
    return sorted(ids) if not ids & in_redis(app) else None


@ON_POSTGRES
@pytest.mark.redis
@pytest.mark.spec("OPS-6")
def test_redis_flushed_mid_way_every_provisioning_and_notice_happens_once(
    make_app, jobs_plugin, queues, tmp_path
):
    app = make_app(
        plugins=[("test-auth", PrincipalHeader()), ("jobs", jobs_plugin)],
        broker_url=queues.url("redis", tmp_path),
        billing={"pay_rate": "100000/minute", "pay_account_rate": "100000/minute"},
    )
    alice, user = customer("alice")
    sandbox_card(app, alice.id)
    api = api_for(app, user)
    topup = topup_catalogue(app)["prepaid-credit-5"]
    addons = addon_catalogue(app)
    prepaid = service_of(alice, "prepaid")
    lines = [service_of(alice, "broadband") for _ in range(PURCHASES // 4)]
    orders = [
        (line, addons[code])
        for line in lines
        for code in ("broadband-boost-900", "broadband-router-wifi6")
    ]
    log = tmp_path / "worker.log"
    release = tmp_path / "release"
    worker = portico(
        "worker",
        "--threads",
        "2",
        env=portico_env(app, install_entry_point(tmp_path / "site")),
        log=log,
    )
    try:
        with db.connection():  # hold both worker threads: the first half's work waits in Redis
            for _ in range(2):
                app.tasks.enqueue("jobs_plugin.tasks.block", str(release))
        app.tasks.relay()
        wait_for(
            lambda: len(runs("block-start")) == 2,
            timeout=60,
            what=f"the worker to start; log:\n{log.read_text(errors='replace')}",
        )
        for i in range(PURCHASES):
            if i == PURCHASES // 2:
                assert queues.flush_redis() > 0  # Redis restarted empty, mid-way
                release.touch()
            if i % 2 == 0:
                r = api.post(
                    f"/api/v1/services/{prepaid.id}/topups",
                    json={"product_id": topup.id},
                    headers={"Idempotency-Key": f"t{i}"},
                )
            else:
                line, product = orders[i // 2]
                r = api.post(
                    f"/api/v1/services/{line.id}/addons",
                    json={"product_id": product.id},
                    headers={"Idempotency-Key": f"a{i}"},
                )
            assert r.status_code == 201, r.text
        missing = wait_for(lambda: lost(app), timeout=240, what="the worker to run what it has")
        # The sweep, as a node's relay runs it once tasks.redeliver_after has passed.
        resent = app.tasks.redeliver(now=db.utcnow() + app.tasks.redeliver_after)
        assert resent == len(missing) > 50  # the first half's work, lost with Redis
        app.tasks.relay()
        wait_for(
            lambda: not OutboxMessage.select().where(OutboxMessage.done_at.is_null()).exists(),
            timeout=240,
            what="every message sent again to be done",
        )
    finally:
        code = stop(worker)
    assert code == 0, log.read_text(errors="replace")

    added = list(ServiceAddon.select())
    assert len(added) == PURCHASES // 2 and {a.status for a in added} == {"active"}
    provisioned = Counter(runs("provision"))
    assert provisioned == Counter({f"{a.id}:activate": 1 for a in added})  # each exactly once
    assert AuditEvent.select().where(AuditEvent.action == "addon.active").count() == len(added)
    purchases = list(TopupPurchase.select())
    assert len(purchases) == PURCHASES // 2 and {p.status for p in purchases} == {"credited"}
    deliveries = list(EmailDelivery.select())
    kinds = Counter(d.kind for d in deliveries)
    assert kinds["topup_confirmed"] == kinds["addon_active"] == PURCHASES // 2
    assert {d.status for d in deliveries} == {"sent"}
    mails = list((Path(app.settings.data_dir) / "mail").glob("*.eml"))
    ids = Counter(m.read_text().split("Message-ID: ", 1)[1].split("\n", 1)[0] for m in mails)
    assert len(mails) == len(deliveries) and max(ids.values()) == 1  # each sent once
    receipts = list(Invoice.select())
    assert len(receipts) == PURCHASES * 3 // 4 and all(i.pdf_path for i in receipts)
    print(
        f"\n{PURCHASES} purchases, Redis flushed after {PURCHASES // 2}: {resent} lost messages "
        f"sent again; {len(added)} add-ons provisioned once, {len(deliveries)} emails sent once, "
        f"{len(receipts)} receipt PDFs"
    )
