"""Webhook endpoints and deliveries in the staff API (``admin``) and the operator API
(service tokens: ``read`` to look, ``webhooks:write`` to change), and the add-on callbacks."""

from __future__ import annotations

import falcon

from engine import audit
from engine.api import PageQuery, operation, paginate
from engine.context import get_or_404
from engine.errors import Problem
from engine.i18n import N_
from plugins.webhooks import schemas, service
from plugins.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

WRITE_SCOPE = "webhooks:write"


class _Access:
    """Staff reach these by the route's permission; a service token also needs its scope."""

    def need(self, req, scope: str) -> None:
        principal = req.context.principal
        if principal.kind == "service" and scope not in principal.scopes:
            raise Problem(
                403,
                N_("This service token lacks the %(scope)s scope", scope=scope),
                N_(
                    "Ask an administrator for a token with it (portico token create --scope %(scope)s).",
                    scope=scope,
                ),
                type="missing-scope",
            )


def needs(scope: str):
    """A falcon ``before`` hook: the scope is checked before the body is read (403, not 422)."""

    def hook(req, resp, resource, params) -> None:
        resource.need(req, scope)

    return hook


READ, WRITE = falcon.before(needs("read")), falcon.before(needs(WRITE_SCOPE))


def _endpoint(endpoint_id) -> WebhookEndpoint:
    return get_or_404(WebhookEndpoint, endpoint_id)


class Endpoints(_Access):
    @READ
    @operation("Webhook endpoints (INT-6)", query=PageQuery, response=schemas.EndpointList)
    def on_get(self, req, resp, query):
        return paginate(WebhookEndpoint.select(), WebhookEndpoint.id, query, descending=False)

    @WRITE
    @operation(
        "Subscribe a URL to events; the answer holds its signing secret, shown this once",
        body=schemas.EndpointIn,
        response=schemas.EndpointCreated,
        status=201,
    )
    def on_post(self, req, resp, body):
        return service.create_endpoint(req.context, body)


class Endpoint(_Access):
    @READ
    @operation("One webhook endpoint", response=schemas.EndpointOut)
    def on_get(self, req, resp, endpoint_id):
        return _endpoint(endpoint_id)

    @WRITE
    @operation(
        "Change an endpoint's URL, events, description or enabled flag",
        body=schemas.EndpointPatch,
        response=schemas.EndpointOut,
    )
    def on_patch(self, req, resp, endpoint_id, body):
        return service.update_endpoint(req.context, _endpoint(endpoint_id), body)

    @WRITE
    @operation("Remove an endpoint and its deliveries", status=204)
    def on_delete(self, req, resp, endpoint_id):
        service.delete_endpoint(req.context, _endpoint(endpoint_id))


class Deliveries(_Access):
    @READ
    @operation(
        "An endpoint's deliveries, newest first: status, attempts, last response code",
        query=schemas.DeliveryQuery,
        response=schemas.DeliveryList,
    )
    def on_get(self, req, resp, endpoint_id, query):
        rows = (
            WebhookDelivery.select(WebhookDelivery, WebhookEvent)
            .join(WebhookEvent)
            .where(WebhookDelivery.endpoint == _endpoint(endpoint_id).id)
        )
        if query.get("status"):
            rows = rows.where(WebhookDelivery.status == query["status"])
        return paginate(rows, WebhookDelivery.id, query)


class Replay(_Access):
    @WRITE
    @operation(
        "Send a delivery again now, with a fresh retry window (audited)",
        response=schemas.DeliveryOut,
        status=202,
    )
    def on_post(self, req, resp, delivery_id):
        return service.replay(req.context, get_or_404(WebhookDelivery, delivery_id))


class OperatorEndpoints(Endpoints):
    auth = "service"


class OperatorEndpoint(Endpoint):
    auth = "service"


class OperatorDeliveries(Deliveries):
    auth = "service"


class OperatorReplay(Replay):
    auth = "service"


class AddonCallback(_Access):
    """``POST /api/v1/operator/addons/{addon_id}/provisioned`` and ``.../failed``: the
    operator's answer for an add-on of the ``webhook`` provisioner (INT-6)."""

    auth = "service"

    def _settle(self, req, addon_id, outcome: str, body: dict):
        from plugins.addons.public import ServiceAddon, settle

        found = get_or_404(ServiceAddon, addon_id)  # an id that is no row id is not found
        addon = settle(req.context.app, found.id, outcome, body)
        if addon is None:
            raise Problem(404, N_("Not found"))
        audit.record(
            req.context,
            "addon.settled_by_operator",
            f"addon:{addon.id}",
            {"outcome": outcome, "status": addon.status},
            customer_id=addon.customer_id,
        )
        return addon

    @falcon.before(needs("services:write"))
    @operation(
        "The add-on is set up (or, when it was being removed, taken off)",
        body=schemas.ProvisionedIn,
        response=schemas.AddonStateOut,
        errors={409: "The add-on is not waiting for an answer"},
        description="For add-ons whose provisioner is `webhook`: your systems heard "
        "`addon.ordered` (or `addon.cancelled`) by webhook and did the work. Needs the "
        "`services:write` scope.",
    )
    def on_post_provisioned(self, req, resp, addon_id, body):
        return self._settle(req, addon_id, "active", body)

    @falcon.before(needs("services:write"))
    @operation(
        "The add-on could not be set up (its payment is refunded) or removed",
        body=schemas.ProvisionFailedIn,
        response=schemas.AddonStateOut,
        errors={409: "The add-on is not waiting for an answer"},
        description="`message` is shown to the customer. Needs the `services:write` scope.",
    )
    def on_post_failed(self, req, resp, addon_id, body):
        return self._settle(req, addon_id, "failed", body)
