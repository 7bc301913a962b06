"""The sandbox payment provider: the embedded default, so the demo takes (fake) card payments.

Test cards succeed, decline or ask for 3-D Secure; no keys, no network, no real
money. An operator switches to a real provider with ``[billing] provider`` and
disables this plugin. Outside demo mode it refuses to start unless
``sandbox.allow_outside_demo`` is set (OPS-2): its fake cards would pay real invoices.
"""

from __future__ import annotations

from marshmallow import Schema, fields

from engine import hookimpl
from engine.registry import Route


class SandboxSettings(Schema):
    allow_outside_demo = fields.Boolean(
        load_default=False,
        metadata={
            "description": "let the sandbox provider run outside demo mode (tests, staging): its "
            "test cards pay invoices without money (OPS-2)"
        },
    )


@hookimpl
def register_settings():
    return SandboxSettings


@hookimpl
def register_models():
    from plugins.sandbox.models import MODELS

    return list(MODELS)


@hookimpl
def payment_providers(app):
    if not (app.settings.demo or app.settings.plugin("sandbox").get("allow_outside_demo")):
        from engine.plugins import PluginError

        raise PluginError(
            "plugin 'sandbox': the sandbox payment provider pays invoices with fake cards; "
            "outside demo mode disable it (plugins.disabled = [\"sandbox\"], and choose "
            "billing.provider), or set sandbox.allow_outside_demo = true (tests, staging)"
        )
    from plugins.sandbox.provider import SandboxProvider

    return [SandboxProvider()]


@hookimpl
def register_routes(app):
    from plugins.sandbox import resources as r

    return [
        Route("/sandbox/charges/{ref}/authenticate", r.AuthenticatePage()),
        Route("/api/v1/sandbox/charges/{ref}/authenticate", r.AuthenticateAPI()),
    ]
