"""Service actions through the operator API (issue 17): ``POST
/api/v1/operator/services/{external_id}/{suspend|resume|cancel|expire|change-plan}``.

Each is one transaction with the service locked, its audit event (``service.updated`` with
the fields changed) and, for a status change, the ``service_status_changed`` hook. Doing
what is already done answers ``unchanged``; an ended service (cancelled, expired) takes no
action: 409 ``service-ended``.
"""

from __future__ import annotations

import falcon
from marshmallow import Schema

from engine.api import operation
from engine.db import utcnow
from engine.errors import Problem, invalid
from engine.i18n import N_
from engine.models import Product, Service
from plugins.operator.resources import _external_id, write_scope
from plugins.operator.schemas import ExternalId, OperatorServiceOut, text
from engine.upserts import (
    ENDED,
    UNCHANGED,
    Upserted,
    _status_rules,
    upsert,
    changed_since,
    status_hook,
)

#: The status each action puts a live service in (an ended one takes none: 409).
STATUS_ACTIONS = {
    "suspend": "suspended",
    "resume": "active",
    "cancel": "cancelled",
    "expire": "expired",
}
ACTIONS = (*STATUS_ACTIONS, "change-plan")


class ServiceActionIn(Schema):
    reason = text(0, 200, "unpaid", metadata={"description": "suspend: why (shown to staff)"})
    product_external_id = ExternalId(
        metadata={
            "example": "PLAN-MOBILE-50GB",
            "description": "change-plan (required): the plan to switch to, one of the "
            "current plan's `compatible_plans`",
        }
    )


def service_action(ctx, external_id: str, action: str, values: dict) -> Upserted:
    """Do ``action`` (one of ``ACTIONS``) to the service with this external id; ``values``
    validated with ``ServiceActionIn``. 404 if there is no such service."""

    def prepare(row, v):
        if row is None:
            raise Problem(404, N_("No such service"), type="not-found")
        if action == "change-plan":
            return _change_plan(row, v)
        status = STATUS_ACTIONS[action]
        if row.status == status:
            return {}  # done already: unchanged
        columns: dict = {"status": status}
        if action == "suspend":
            columns["suspended_reason"] = v.get("reason", "")
        if action in ("cancel", "expire") and (row.expires_at is None or row.expires_at > utcnow()):
            columns["expires_at"] = utcnow()  # it ends now: the date the customer sees
        _status_rules(row, columns)  # an ended service: 409 service-ended
        return columns

    return upsert(ctx, Service, "service", external_id, values, prepare, status_hook(ctx))


def _change_plan(row, v: dict) -> dict:
    target_id = v.get("product_external_id")
    if target_id is None:
        raise invalid({"product_external_id": [N_("Missing data for required field.")]})
    target = Product.get_or_none(Product.external_id == target_id)
    if target is None:
        raise invalid({"product_external_id": [N_("No such product.")]})
    if row.status in ENDED:
        raise Problem(
            409,
            N_("This service is %(status)s and cannot change plan", status=row.status),
            N_("An ended service does not start again: create a new one with a new external id."),
            type="service-ended",
        )
    if target.id == row.product_id:
        return {}
    current = Product.get_by_id(row.product_id)
    if target_id not in current.compatible_plans:
        raise invalid(
            {
                "product_external_id": [
                    N_(
                        "This service's plan cannot switch to that one (it is not among the "
                        "plan's compatible_plans)."
                    )
                ]
            }
        )
    # The operator's change wins over a downgrade the customer scheduled for renewal (SVC-3).
    return {
        "product": target.id,
        "monthly_fee": target.monthly_fee,
        "currency": target.currency,
        "pending_plan": None,
    }


class ServiceActionAPI:
    """``POST /api/v1/operator/services/{external_id}/<action>``, one route per action (so
    nothing else under a service's path answers but 404)."""

    auth = "service"
    scope = "services:write"

    def __init__(self, action: str):
        self.action = action

    @falcon.before(write_scope)
    @operation(
        "Suspend, resume, cancel, expire a service or change its plan",
        body=ServiceActionIn,
        response=OperatorServiceOut,
        errors={
            409: "The service has ended (cancelled or expired) and takes no action "
            "(`service-ended`)"
        },
        description="The action is the last part of the path: `suspend` (optional `reason`), `resume`, `cancel`, "
        "`expire` or `change-plan` (`product_external_id`, one of the current plan's "
        "`compatible_plans`, else 422). Doing what is done already answers "
        "`\"change\": \"unchanged\"`. Needs the `services:write` scope.",
    )
    def on_post(self, req, resp, external_id, body):
        done = service_action(req.context, _external_id(external_id), self.action, body)
        row = changed_since(Service).where(Service.id == done.row.id).get()
        row.change = done.change
        return row


__all__ = ["ACTIONS", "UNCHANGED", "ServiceActionAPI", "service_action"]
