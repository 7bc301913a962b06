"""The staff console's webhook pages (``admin``): endpoints, a new one (its secret shown
once), an endpoint's settings (edit, delete) and deliveries with their status, and a replay
button (all audited)."""

from __future__ import annotations

import falcon

from engine.api import paginate
from engine.context import get_or_404
from engine.errors import Problem
from engine.events import EVENT_TYPES
from engine.forms import read_form, validate_form
from engine.models import StaffUser
from plugins.webhooks import schemas, service
from plugins.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent


def _page(req, resp, template: str, status: int = 200, **values) -> None:
    # Like the staff plugin's pages: the console has no customer navigation.
    req.context.app.page(
        req,
        resp,
        template,
        status,
        sections=[],
        staff_console=True,
        staff=StaffUser.get_by_id(req.context.principal.staff_id),
        event_types=EVENT_TYPES,
        **values,
    )


def _see_other(resp, path: str) -> None:
    resp.status = falcon.HTTP_303
    resp.location = path


def _endpoint_form(req) -> tuple[dict, dict]:
    """The endpoint form, validated: checkboxes arrive as one value, several or none."""
    form = read_form(req)
    chosen = form.get("event_types") or []
    form["event_types"] = [chosen] if isinstance(chosen, str) else list(chosen)
    if "enabled_shown" in form:  # the edit form: an unticked box sends nothing
        form["enabled"] = "true" if form.get("enabled") else "false"
    return validate_form(req, schemas.EndpointIn)


class WebhooksPage:
    """``GET|POST /staff/webhooks``: the endpoints, and a form for a new one."""

    def on_get(self, req, resp):
        self.render(req, resp)

    def on_post(self, req, resp):
        data, errors = _endpoint_form(req)
        created = None
        if not errors:
            try:
                created = service.create_endpoint(req.context, data)
            except Problem as exc:
                errors = exc.errors or {"_form": [exc.title]}
        self.render(req, resp, 201 if created else 422, errors=errors, created=created)

    @staticmethod
    def render(req, resp, status: int = 200, errors=None, created=None):
        _page(
            req,
            resp,
            "staff/webhooks.html",
            status,
            endpoints=list(WebhookEndpoint.select().order_by(WebhookEndpoint.id)),
            errors=errors or {},
            form=read_form(req) if errors else {},
            created=created,
            request_deleted=req.get_param("deleted") is not None,
        )


class EndpointPage:
    """``GET|POST /staff/webhooks/{id}``: one endpoint's settings, to change, and its
    deliveries, newest first."""

    def on_get(self, req, resp, endpoint_id):
        self.render(req, resp, get_or_404(WebhookEndpoint, endpoint_id))

    def on_post(self, req, resp, endpoint_id):
        endpoint = get_or_404(WebhookEndpoint, endpoint_id)
        data, errors = _endpoint_form(req)
        if not errors:
            try:
                service.update_endpoint(req.context, endpoint, data)
            except Problem as exc:
                errors = exc.errors or {"_form": [exc.title]}
        if errors:
            endpoint = WebhookEndpoint.get_by_id(endpoint.id)  # as stored, not half-changed
            self.render(req, resp, endpoint, 422, errors)
        else:
            _see_other(resp, f"/staff/webhooks/{endpoint.id}?saved=1")

    @staticmethod
    def render(req, resp, endpoint, status: int = 200, errors=None):
        query = schemas.DeliveryQuery().load(
            {k: v for k, v in req.params.items() if k in ("cursor", "limit", "status")}
        )
        rows = (
            WebhookDelivery.select(WebhookDelivery, WebhookEvent)
            .join(WebhookEvent)
            .where(WebhookDelivery.endpoint == endpoint.id)
        )
        page = paginate(rows, WebhookDelivery.id, query)
        _page(
            req,
            resp,
            "staff/webhook.html",
            status,
            endpoint=endpoint,
            deliveries=page["items"],
            next=page["next"],
            errors=errors or {},
            form={**read_form(req), "enabled": read_form(req).get("enabled") == "true"},
            saved=req.get_param("saved") is not None,
        )


class DeleteEndpointPage:
    """``POST /staff/webhooks/{id}/delete``: remove an endpoint; what it had pending is not
    sent."""

    def on_post(self, req, resp, endpoint_id):
        service.delete_endpoint(req.context, get_or_404(WebhookEndpoint, endpoint_id))
        _see_other(resp, "/staff/webhooks?deleted=1")


class ReplayPage:
    """``POST /staff/webhook-deliveries/{id}/replay``: the replay button."""

    def on_post(self, req, resp, delivery_id):
        delivery = get_or_404(WebhookDelivery, delivery_id)
        service.replay(req.context, delivery)
        _see_other(resp, f"/staff/webhooks/{delivery.endpoint_id}?replayed={delivery.id}")
