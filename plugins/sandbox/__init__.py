"""The sandbox payment provider: the embedded default, so the demo takes (fake) card payments.

Test cards succeed, decline or ask for 3-D Secure; no keys, no network, no real
money. An operator switches to a real provider with ``[billing] provider``.
"""
from __future__ import annotations

from engine import hookimpl
from engine.registry import Route


@hookimpl
def register_models():
    from plugins.sandbox.models import MODELS
    return list(MODELS)


@hookimpl
def payment_providers(app):
    from plugins.sandbox.provider import SandboxProvider
    return [SandboxProvider()]


@hookimpl
def register_routes(app):
    from plugins.sandbox import resources as r
    return [
        Route("/sandbox/charges/{ref}/authenticate", r.AuthenticatePage()),
        Route("/api/v1/sandbox/charges/{ref}/authenticate", r.AuthenticateAPI()),
    ]
