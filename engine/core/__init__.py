"""The essential plugin: core tables, health, the OpenAPI document, static files, the web app
manifest and service worker, core demo data."""
from __future__ import annotations

from engine import hookimpl
from engine.idempotency import IdempotencyRecord
from engine.models import MODELS
from engine.registry import Route
from engine.storage import StoredFile


@hookimpl
def register_models():
    return [*MODELS, IdempotencyRecord, StoredFile]


@hookimpl
def register_routes(app):
    from engine.core import pwa, resources
    return [
        Route("/healthz", resources.Health()),
        Route("/api/v1/openapi.json", resources.OpenAPI()),
        Route("/static/{path:path}", resources.Static()),
        Route("/lang", resources.Language()),
        Route("/manifest.webmanifest", pwa.Manifest()),
        Route("/sw.js", pwa.ServiceWorker()),
        Route("/offline", pwa.OfflinePage()),
    ]


@hookimpl
def demo_data(app, demo):
    from engine.core.demo import seed
    seed(app, demo)
