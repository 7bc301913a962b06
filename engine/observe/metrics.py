"""Prometheus series (the standard ``prometheus_client``) and the ``/metrics`` exposition.

Counters and histograms live in each process. Under gunicorn with several workers
``PROMETHEUS_MULTIPROC_DIR`` must name an empty folder before the process starts
(``portico serve`` makes one when it is unset): each worker writes its values
there and a scrape of any worker adds them all up. The outbox gauges are read
from the database at scrape time, so every node reports the cluster's backlog.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import dramatiq
from dramatiq.broker import MessageProxy
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from engine.observe.logs import request_id
from engine.security import same

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from engine.app import Portico
    from engine.settings import Settings

log = logging.getLogger("portico.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "portico_http_requests",
    "HTTP requests answered, by route template and status",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "portico_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TASK_RUNS = Counter(
    "portico_task_runs",
    "Background task runs by actor and outcome (ok, error, skipped)",
    ["actor", "outcome"],
)
TASK_SECONDS = Histogram(
    "portico_task_duration_seconds",
    "Time a background task ran, by actor",
    ["actor"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
TASK_DEAD = Counter(
    "portico_task_dead", "Background tasks given up after their last retry, by actor", ["actor"]
)
PAYMENTS = Counter(
    "portico_payments",
    "Payments that reached a final outcome (succeeded, failed, canceled)",
    ["provider", "outcome"],
)
LOGIN_FAILURES = Counter(
    "portico_login_failures",
    "Failed sign-ins by realm (customer, staff) and factor",
    ["realm", "factor"],
)
LOGIN_LOCKOUTS = Counter(
    "portico_login_lockouts", "Emails locked after too many failed sign-ins, by realm", ["realm"]
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in METHODS else "other"
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_SECONDS.labels(method, route).observe(seconds)


class TaskMetrics(dramatiq.Middleware):
    """Counts and times each task run; a task's log lines carry the request id that sent it."""

    def __init__(self) -> None:
        self._local = threading.local()

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._local.started = time.perf_counter()
        request_id.set(message.options.get("request_id"))

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._done(message, "error" if exception is not None else "ok")

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._done(message, "skipped")

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        TASK_DEAD.labels(message.actor_name).inc()

    def _done(self, message: MessageProxy, outcome: str) -> None:
        started = getattr(self._local, "started", None)
        self._local.started = None
        TASK_RUNS.labels(message.actor_name, outcome).inc()
        if started is not None and outcome != "skipped":
            TASK_SECONDS.labels(message.actor_name).observe(time.perf_counter() - started)
        request_id.set(None)


class OutboxCollector:
    """Gauges read at scrape time: outbox backlog and age, and whether the database answers."""

    def __init__(self, app: Portico) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        from engine import db
        from engine.models import OutboxMessage

        up = GaugeMetricFamily("portico_database_up", "1 when the scrape could read the database")
        try:
            with db.connection():
                unsent = OutboxMessage.select().where(OutboxMessage.sent_at.is_null())
                pending = unsent.count()
                oldest = unsent.order_by(OutboxMessage.created_at).first()
                age = (db.utcnow() - oldest.created_at).total_seconds() if oldest else 0.0
        except Exception as exc:  # the scrape still answers; the gauge says why
            log.warning("metrics: cannot read the outbox: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "portico_outbox_pending",
            "Background work recorded but not yet handed to the broker",
            value=pending,
        )
        yield GaugeMetricFamily(
            "portico_outbox_oldest_age_seconds",
            "Age of the oldest outbox row not yet handed to the broker",
            value=max(age, 0.0),
        )


def exposition(app: Portico) -> bytes:
    """Every series of this process (or of all gunicorn workers), then the outbox gauges."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        # prometheus_client leaves this constructor (and mark_process_dead) unannotated
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(OutboxCollector(app))
    return text + generate_latest(scrape)


def refusal(settings: Settings, ip: str, authorization: str | None) -> int | None:
    """Why a scrape is refused (404 unconfigured, 401 token, 403 address), or None.

    With both a token and an allow-list set, a scrape needs both.
    """
    token, allowed = settings.metrics.token, settings.metrics.allow_ips
    if not token and not allowed:
        return 404
    if allowed and not ip_allowed(ip, allowed):
        return 403
    if token:
        sent = (authorization or "").partition(" ")
        if sent[0].lower() != "bearer" or not same(sent[2].strip(), token):
            return 401
    return None


def ip_allowed(ip: str, allowed: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(entry, strict=False) for entry in allowed)


def prepare_multiproc_dir(path: str) -> None:
    """Empty the folder the workers write to (stale files from a last run would add up)."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))


def worker_exited(pid: int) -> None:
    """Gunicorn's ``child_exit``: a dead worker's live gauges stop counting."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def serve_metrics(app: Portico, bind: str) -> threading.Thread:
    """Serve ``/metrics`` from a background thread (``portico worker``: ``[metrics] worker_bind``).

    The same token and allow-list as the web's ``/metrics``; the peer's address is the
    client (put no proxy in front, or allow the proxy's address).
    """
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        refused = None if environ.get("PATH_INFO") == "/metrics" else 404
        refused = refused or refusal(
            app.settings, environ.get("REMOTE_ADDR", ""), environ.get("HTTP_AUTHORIZATION")
        )
        if refused:
            start_response(f"{refused} Refused", [("Content-Type", "text/plain")])
            return [b"refused\n"]
        body = exposition(app)
        start_response(
            "200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))]
        )
        return [body]

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # a scrape every 15 s: no news
            pass

    class Threaded(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    host, _, port = bind.rpartition(":")
    server = make_server(
        host.strip("[]"), int(port), wsgi, server_class=Threaded, handler_class=Quiet
    )
    thread = threading.Thread(target=server.serve_forever, name="portico-metrics", daemon=True)
    thread.start()
    log.info("metrics on http://%s/metrics", bind)
    return thread
