"""Operator: the operator API for the operator's own systems (INT-1, INT-3).

Service tokens (``portico token create``) for systems, not people, open
``/api/v1/operator/...`` and nothing else; no customer or staff sign-in opens it. There the
operator's systems upsert customers, contacts, sites and services by their own external ids,
sync by ``updated_since``, send usage by the service's external id and, while billing is
enabled, push invoices, transactions and offline payments (INT-4). docs/integration.md.
"""

from __future__ import annotations

from engine import hookimpl
from engine.registry import Route


@hookimpl
def plugin_requires():
    return ["identity", "services"]


@hookimpl
def plugin_optional():
    # POST /api/v1/operator/usage when usage is metered; invoices, transactions and payments
    # pushed in (INT-4) when Portico bills
    return ["usage", "billing"]


@hookimpl
def register_models():
    from plugins.operator.models import MODELS

    return list(MODELS)


@hookimpl(tryfirst=True)
def authenticate_request(app, req):
    from plugins.operator.auth import authenticate

    return authenticate(app, req)


@hookimpl
def register_routes(app):
    from plugins.operator import resources as r

    base = "/api/v1/operator"
    routes = []
    if "usage" in app.plugins.enabled:
        from plugins.operator.usage import UsageAPI

        routes.append(Route(f"{base}/usage", UsageAPI()))
    if "billing" in app.plugins.enabled:
        from plugins.operator import billing

        routes += billing.routes(base)
    for name, (many, one) in (
        ("customers", r.CUSTOMERS),
        ("contacts", r.CONTACTS),
        ("sites", r.SITES),
        ("services", r.SERVICES),
    ):
        routes += [Route(f"{base}/{name}", many), Route(f"{base}/{name}/{{external_id}}", one)]
    return routes


@hookimpl
def register_commands(cli, app_factory):
    from plugins.operator.commands import token_group

    cli.add_command(token_group(app_factory))
