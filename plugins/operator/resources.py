"""The operator API (INT-1, INT-3): ``/api/v1/operator/...``, for service tokens only."""

from __future__ import annotations

from typing import Any

import falcon

from engine.api import operation, paginate
from engine.errors import Problem
from engine.i18n import N_
from engine.models import Contact, Customer, Service, Site
from plugins.operator import invitations, schemas
from engine import upserts as rules
from plugins.operator.schemas import EXTERNAL_ID

PUT_ERRORS = {
    201: "Created (an update or no change answers 200)",
    409: "A change the object cannot take (an ended service restarted), or a concurrent write",
}


def need(req, scope: str) -> None:
    """403 unless the request's service token has ``scope``."""
    if scope not in req.context.principal.scopes:
        raise Problem(
            403,
            N_("This service token lacks the %(scope)s scope", scope=scope),
            N_(
                "Ask an administrator for a token with it (portico token create --scope %(scope)s).",
                scope=scope,
            ),
            type="missing-scope",
        )


def _external_id(value: str) -> str:
    """A path's external id; one that cannot be an external id is not found."""
    try:
        EXTERNAL_ID(value)
    except Exception:  # marshmallow's ValidationError: not an id, so nothing has it
        raise falcon.HTTPNotFound(title=N_("Not found")) from None
    return value


def _read_scope(req, resp, resource, params) -> None:
    need(req, "read")


def write_scope(req, resp, resource, params) -> None:
    need(req, resource.scope)  # before the body is read: no scope is a 403, not a 422


class _Synced:
    """``GET`` and ``PUT /api/v1/operator/<objects>/{external_id}``, and the list."""

    auth = "service"
    model: Any = Customer
    scope = "customers:write"
    upsert = staticmethod(rules.upsert_customer)

    def one(self, external_id: str):
        row = (
            rules.changed_since(self.model)
            .where(self.model.external_id == _external_id(external_id))
            .first()
        )
        if row is None:
            raise falcon.HTTPNotFound(title=N_("Not found"))
        return row

    def put(self, req, resp, external_id, body):
        done = self.upsert(req.context, _external_id(external_id), body)
        if done.change == rules.CREATED:
            resp.status = falcon.HTTP_201
        row = self.one(external_id)
        row.change = done.change
        return row

    def page(self, query):
        rows = rules.changed_since(
            self.model, query.get("updated_since"), query.get("customer_external_id")
        )
        return paginate(rows, self.model.id, query, descending=False)


def _pair(
    model, scope, upsert, noun, out, body, page, put_description="", query=schemas.OperatorListQuery
):
    """The two resources of one kind of object: the collection and one by external id."""

    class One(_Synced):
        @falcon.before(_read_scope)
        @operation(f"Look up a {noun} by your external id", response=out)
        def on_get(self, req, resp, external_id):
            return self.one(external_id)

        @falcon.before(write_scope)
        @operation(
            f"Create or update a {noun} by your external id (idempotent)",
            body=body,
            response=out,
            errors=PUT_ERRORS,
            description=put_description
            or (
                "Sending the same body again changes nothing and answers "
                "`\"change\": \"unchanged\"`. Fields left out keep their value. "
                f"Needs the `{scope}` scope."
            ),
        )
        def on_put(self, req, resp, external_id, body):
            return self.put(req, resp, external_id, body)

    class Many(_Synced):
        @falcon.before(_read_scope)
        @operation(
            f"List {noun}s, oldest first; filter by `updated_since` to sync",
            query=query,
            response=page,
        )
        def on_get(self, req, resp, query):
            return self.page(query)

    for cls in (One, Many):
        cls.model, cls.scope, cls.upsert = model, scope, staticmethod(upsert)
        cls.__name__ = f"{noun.title()}{'API' if cls is One else 'ListAPI'}"
    return Many(), One()


CUSTOMERS = _pair(
    Customer,
    "customers:write",
    rules.upsert_customer,
    "customer",
    schemas.OperatorCustomerOut,
    schemas.OperatorCustomerIn,
    schemas.CustomerPage,
)
CONTACTS = _pair(
    Contact,
    "customers:write",
    invitations.upsert_contact,
    "contact",
    schemas.OperatorContactOut,
    schemas.OperatorContactIn,
    schemas.ContactPage,
)
SITES = _pair(
    Site,
    "customers:write",
    rules.upsert_site,
    "site",
    schemas.OperatorSiteOut,
    schemas.OperatorSiteIn,
    schemas.SitePage,
)
SERVICES = _pair(
    Service,
    "services:write",
    rules.upsert_service,
    "service",
    schemas.OperatorServiceOut,
    schemas.OperatorServiceIn,
    schemas.ServicePage,
    put_description="Idempotent: the same body again answers "
    "`\"change\": \"unchanged\"`. Suspend, resume or cancel a service with "
    "its `status`. Needs the `services:write` scope.",
)
