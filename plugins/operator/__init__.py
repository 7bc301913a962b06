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
    # usage: POST .../usage when metered; staff: the token console; billing: invoices,
    # transactions and payments pushed in (INT-4) when Portico bills; topups, addons: their
    # catalogue entries
    return ["usage", "staff", "billing", "topups", "addons"]


@hookimpl
def register_settings():
    from plugins.operator.settings import OperatorSettings

    return OperatorSettings


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
    from plugins.operator import invitation_pages as inv

    routes += [
        Route(f"{base}/contacts/{{external_id}}/invitation", inv.InvitationAPI()),
        Route("/invitation", inv.InvitationPage()),
    ]
    if "staff" in app.plugins.enabled:
        from plugins.operator import console

        routes += [
            Route("/staff/tokens", console.TokensPage(), permission="admin"),
            Route(
                "/staff/tokens/{token_id:int}/revoke", console.RevokeTokenPage(), permission="admin"
            ),
        ]
    routes += _catalogue_routes(app, base)
    return routes


def _catalogue_routes(app, base: str) -> list[Route]:
    """Products, service actions and (with usage) buckets, (with topups, addons) their
    catalogue entries (issue 17)."""
    from plugins.operator.actions import ACTIONS, ServiceActionAPI
    from plugins.operator.catalogue import PRODUCTS

    many, one = PRODUCTS
    routes = [
        Route(f"{base}/products", many),
        Route(f"{base}/products/{{external_id}}", one),
    ]
    routes += [
        Route(f"{base}/services/{{external_id}}/{action}", ServiceActionAPI(action))
        for action in ACTIONS
    ]
    if "usage" in app.plugins.enabled:
        from plugins.operator import buckets as b

        many, one = b.BUCKETS
        routes += [
            Route(f"{base}/buckets", many),
            Route(f"{base}/buckets/{{external_id}}", one),
            Route(f"{base}/buckets/{{external_id}}/adjust", b.BucketAdjustAPI()),
            Route(f"{base}/buckets/{{external_id}}/expire", b.BucketExpireAPI()),
        ]
    for plugin, name, pair in (
        ("topups", "topup-products", "TOPUP_PRODUCTS"),
        ("addons", "addon-products", "ADDON_PRODUCTS"),
    ):
        if plugin in app.plugins.enabled:
            from plugins.operator import catalogue_items

            many, one = getattr(catalogue_items, pair)
            routes += [
                Route(f"{base}/{name}", many),
                Route(f"{base}/{name}/{{external_id}}", one),
            ]
    return routes


@hookimpl
def register_commands(cli, app_factory):
    from plugins.operator.bulk_commands import export_command, import_command
    from plugins.operator.commands import token_group

    cli.add_command(token_group(app_factory))
    cli.add_command(import_command(app_factory))
    cli.add_command(export_command(app_factory))
