"""Webhooks (INT-6): the operator's systems hear about business events, signed and retried.

Staff with ``admin`` (``/staff/webhooks``, ``/api/v1/staff/webhooks``) and service tokens
(``/api/v1/operator/webhooks``: ``read``, ``webhooks:write``) subscribe https URLs to event
types (``engine.events.EVENT_TYPES``). Plugins announce events with ``engine.events.emit``
inside their transaction; here each becomes an event row and one delivery per subscribed
endpoint, sent by a task, retried with backoff for ``[webhooks] retry_hours``, visible and
replayable in the console. With the add-ons plugin, add-ons of the ``webhook`` provisioner
are settled by the operator's call back (``/api/v1/operator/addons/{id}/provisioned``).
docs/integration.md, Webhooks.
"""

from __future__ import annotations

from engine import hookimpl
from engine.registry import Route


@hookimpl
def plugin_optional():
    return ["operator", "addons"]  # the operator API's routes; add-on callbacks


@hookimpl
def register_settings():
    from plugins.webhooks.schemas import WebhookSettings

    return WebhookSettings


@hookimpl
def register_models():
    from plugins.webhooks.models import MODELS

    return list(MODELS)


@hookimpl
def register_routes(app):
    from plugins.webhooks import pages
    from plugins.webhooks import resources as r

    staff, api = "/api/v1/staff", "/api/v1/operator"
    routes = [
        Route("/staff/webhooks", pages.WebhooksPage(), permission="admin"),
        Route("/staff/webhooks/{endpoint_id}", pages.EndpointPage(), permission="admin"),
        Route(
            "/staff/webhooks/{endpoint_id}/delete", pages.DeleteEndpointPage(), permission="admin"
        ),
        Route(
            "/staff/webhook-deliveries/{delivery_id}/replay",
            pages.ReplayPage(),
            permission="admin",
        ),
        Route(f"{staff}/webhooks", r.Endpoints(), permission="admin"),
        Route(f"{staff}/webhooks/{{endpoint_id}}", r.Endpoint(), permission="admin"),
        Route(f"{staff}/webhooks/{{endpoint_id}}/deliveries", r.Deliveries(), permission="admin"),
        Route(f"{staff}/webhook-deliveries/{{delivery_id}}/replay", r.Replay(), permission="admin"),
    ]
    if "operator" in app.plugins.enabled:
        routes += [
            Route(f"{api}/webhooks", r.OperatorEndpoints()),
            Route(f"{api}/webhooks/{{endpoint_id}}", r.OperatorEndpoint()),
            Route(f"{api}/webhooks/{{endpoint_id}}/deliveries", r.OperatorDeliveries()),
            Route(f"{api}/webhook-deliveries/{{delivery_id}}/replay", r.OperatorReplay()),
        ]
        if "addons" in app.plugins.enabled:
            callback = r.AddonCallback()
            routes += [
                Route(f"{api}/addons/{{addon_id}}/provisioned", callback, suffix="provisioned"),
                Route(f"{api}/addons/{{addon_id}}/failed", callback, suffix="failed"),
            ]
    return routes


@hookimpl
def register_actors():
    from plugins.webhooks.tasks import deliver, send_due_webhooks

    return [deliver, send_due_webhooks]


@hookimpl
def event_emitted(app, event_type, data, customer_id):
    from plugins.webhooks.service import record_event

    record_event(app, event_type, data, customer_id)
