"""The essential plugin: core tables, health, the OpenAPI document, static files, the web app
manifest and service worker, core demo data."""

from __future__ import annotations

from engine import hookimpl
from engine.idempotency import IdempotencyRecord
from engine.models import MODELS
from engine.registry import Route
from engine.retention import ArchiveBatch
from engine.storage import StoredFile


@hookimpl
def register_models():
    return [*MODELS, IdempotencyRecord, StoredFile, ArchiveBatch]


@hookimpl
def register_actors():
    from engine.retention import archive_old_rows

    return [archive_old_rows]


@hookimpl
def register_archives(app):
    from engine.models import AuditEvent
    from engine.retention import Archive

    return [
        Archive(
            "audit_events",
            AuditEvent,
            AuditEvent.created_at,
            lambda app: app.settings.retention.audit_events_days,
        )
    ]


@hookimpl
def register_routes(app):
    from engine.core import pwa, resources
    from engine.observe import health

    return [
        Route("/healthz", resources.Health()),
        Route("/livez", health.Livez()),
        Route("/readyz", health.Readyz()),
        Route("/metrics", health.Metrics()),
        Route("/api/v1/openapi.json", resources.OpenAPI()),
        Route("/static/{path:path}", resources.Static()),
        Route("/lang", resources.Language()),
        Route("/appearance", resources.Appearance()),
        Route("/manifest.webmanifest", pwa.Manifest()),
        Route("/sw.js", pwa.ServiceWorker()),
        Route("/offline", pwa.OfflinePage()),
    ]


@hookimpl(optionalhook=True)  # billing's hooks: billing may be disabled
def payment_succeeded(app, payment):
    from engine.observe.metrics import PAYMENTS

    PAYMENTS.labels(payment.provider, "succeeded").inc()


@hookimpl(optionalhook=True)
def payment_failed(app, payment):
    from engine.observe.metrics import PAYMENTS

    PAYMENTS.labels(payment.provider, payment.status).inc()  # failed or canceled


@hookimpl
def demo_data(app, demo):
    from engine.core.demo import seed

    seed(app, demo)
