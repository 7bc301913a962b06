"""The services section: JSON API and portal pages over the same rules (``service.py``)."""

from __future__ import annotations

import falcon

from engine.api import load, operation, paginate
from engine.context import get_owned
from engine.errors import Problem
from engine.forms import validate_form
from engine.models import Service
from engine.i18n import N_
from plugins.services import plans, schemas, service as rules

DONE_MESSAGES = {
    "cancelled": N_("The service has been cancelled."),
    "modified": N_("Your changes have been saved."),
    "applied": N_("Your new plan applies now."),
    "scheduled": N_("Your new plan starts at the next renewal."),
    "kept": N_("The plan change is cancelled: your plan stays as it is."),
}


def _owned(req, service_id) -> Service:
    return get_owned(Service, service_id, req.context)


# -- JSON API ---------------------------------------------------------------------


class ServicesAPI:
    """``GET /api/v1/services``"""

    @operation(
        "List your services (SVC-1)", query=schemas.ServiceQuery, response=schemas.ServicePage
    )
    def on_get(self, req, resp, query):
        app, ctx = req.context.app, req.context
        page = paginate(
            rules.services_of(ctx.require_customer(), query["status"], query["type"]),
            Service.id,
            query,
            descending=False,
        )
        page["items"] = [rules.describe(app, ctx, s) for s in page["items"]]
        return page


class ServiceAPI:
    """``GET|PATCH /api/v1/services/{service_id}``"""

    @operation(
        "One of your services, with its actions and eSIM code (SVC-1..3, MOB-2)",
        response=schemas.ServiceSchema,
    )
    def on_get(self, req, resp, service_id):
        return rules.describe(req.context.app, req.context, _owned(req, service_id))

    @operation(
        "Switch auto-renew on or off, where the product allows it",
        body=schemas.ServicePatch,
        response=schemas.ServiceSchema,
    )
    def on_patch(self, req, resp, service_id, body):
        app, ctx = req.context.app, req.context
        service = rules.set_auto_renew(app, ctx, _owned(req, service_id), body["auto_renew"])
        return rules.describe(app, ctx, service)


class ServiceCancelAPI:
    """``POST /api/v1/services/{service_id}/cancel``"""

    @operation(
        "Cancel a service, where the operator and the product allow it (SVC-4)",
        body=schemas.CancelIn,
        response=schemas.ServiceSchema,
        description="Refused with 403 `cancel-not-allowed` (and the support contacts) "
        "when self-service cancellation is off.",
    )
    def on_post(self, req, resp, service_id, body):
        app, ctx = req.context.app, req.context
        service = rules.cancel(app, ctx, _owned(req, service_id), body["reason"])
        return rules.describe(app, ctx, service)


class PlanOptionsAPI:
    """``GET /api/v1/services/{service_id}/plan-options``"""

    @operation(
        "The plans this service may switch to, with what each costs (SVC-3)",
        response=schemas.PlanOptions,
    )
    def on_get(self, req, resp, service_id):
        service = _owned(req, service_id)
        live = rules.modify_allowed(service)
        return {
            "items": plans.options(service) if live else [],
            "pending_plan": service.pending_plan if live else None,
        }


class PlanChangeAPI:
    """``POST|DELETE /api/v1/services/{service_id}/plan-change``"""

    @operation(
        "Quote, or confirm, a switch to a compatible plan (SVC-3)",
        body=schemas.PlanChangeIn,
        response=schemas.PlanChangeOut,
        errors={
            403: "The contact's role may not change plans (`role-forbidden`), or the product "
            "does not allow changes (`modify-not-allowed`)",
            409: "The service has ended (`service-ended`)",
        },
        description="Without `confirm` (or false) answers the quote and changes nothing; "
        "with `confirm: true` an upgrade applies now and its prorated `charge_now` goes on "
        "the account, a downgrade is scheduled for the next renewal. A plan that is not "
        "among the current plan's compatible ones: 422. Emits `plan_change.requested`.",
    )
    def on_post(self, req, resp, service_id, body):
        app, ctx = req.context.app, req.context
        return plans.change(app, ctx, _owned(req, service_id), body["plan"], body["confirm"])

    @operation(
        "Cancel a scheduled downgrade before the renewal applies it (SVC-3)",
        response=schemas.ServiceSchema,
        errors={409: "Nothing is scheduled (`no-plan-change`)"},
    )
    def on_delete(self, req, resp, service_id):
        app, ctx = req.context.app, req.context
        service = plans.cancel_pending(app, ctx, _owned(req, service_id))
        return rules.describe(app, ctx, service)


# -- portal pages -------------------------------------------------------------------


def _section(req) -> None:
    req.context.extra["section"] = "services"


class ServicesPage:
    """``GET /services``: every service, live ones first."""

    def on_get(self, req, resp):
        app, ctx = req.context.app, req.context
        _section(req)
        query = load(schemas.ServiceQuery, dict(req.params))
        page = paginate(
            rules.services_of(ctx.require_customer(), query["status"], query["type"]),
            Service.id,
            query,
            descending=False,
        )
        items = [rules.describe(app, ctx, s) for s in page["items"]]
        app.page(
            req,
            resp,
            "services/list.html",
            live=[s for s in items if s["status"] in rules.LIVE],
            ended=[s for s in items if s["status"] not in rules.LIVE],
            next_cursor=page["next"],
        )


class ServicePage:
    """``GET /services/{service_id}``: full details, eSIM QR code, actions, cancellation."""

    def on_get(self, req, resp, service_id):
        app, ctx = req.context.app, req.context
        _section(req)
        service = _owned(req, service_id)
        done = req.get_param("done")
        app.page(
            req,
            resp,
            "services/detail.html",
            service=rules.describe(app, ctx, service),
            esim_qr=rules.esim_qr(service),
            support=rules.contact_support(app),
            flash=DONE_MESSAGES.get(done) and app.translator.gettext(DONE_MESSAGES[done]),
        )


class ServiceFormPage:
    """A form about one service: shown, checked with ``schema``, applied by ``apply()``, then
    back to the service page with the ``done`` message. A refusal by the rules (a Problem)
    shows on the form, with how to reach support."""

    template: str
    schema: type
    done: str

    def apply(self, app, ctx, service, data: dict) -> str | None:
        """Do it; may name the ``done`` message (else ``self.done``)."""
        raise NotImplementedError

    def extra(self, req, service) -> dict:
        """More for the template."""
        return {}

    def on_get(self, req, resp, service_id):
        self._render(req, resp, _owned(req, service_id))

    def on_post(self, req, resp, service_id):
        app, ctx = req.context.app, req.context
        service = _owned(req, service_id)
        data, errors = validate_form(req, self.schema)
        if errors:
            self._render(req, resp, service, errors=errors, status=422)
            return
        try:
            done = self.apply(app, ctx, service, data) or self.done
        except Problem as exc:
            self._render(
                req,
                resp,
                service,
                errors=exc.errors,
                refusal=None if exc.errors else exc.description or exc.title,
                status=int(exc.status_code),
            )
            return
        raise falcon.HTTPSeeOther(f"/services/{service.id}?done={done}")

    def _render(self, req, resp, service, errors=None, refusal=None, status=200):
        app, ctx = req.context.app, req.context
        _section(req)
        app.page(
            req,
            resp,
            self.template,
            status=status,
            service=rules.describe(app, ctx, service),
            errors=errors or {},
            refusal=refusal,
            support=rules.contact_support(app),
            **self.extra(req, service),
        )


class ServiceCancelPage(ServiceFormPage):
    """``GET|POST /services/{service_id}/cancel``: confirm, or how to reach support."""

    template, schema, done = "services/cancel.html", schemas.CancelForm, "cancelled"

    def apply(self, app, ctx, service, data):
        rules.cancel(app, ctx, service, data["reason"])
        return None


class ServiceModifyPage(ServiceFormPage):
    """``GET|POST /services/{service_id}/modify``: switch auto-renew where the product allows,
    and the compatible plans to choose from (SVC-3)."""

    template, schema, done = "services/modify.html", schemas.ServicePatch, "modified"

    def apply(self, app, ctx, service, data):
        rules.set_auto_renew(app, ctx, service, data["auto_renew"])
        return None

    def extra(self, req, service):
        live = rules.modify_allowed(service)
        return {
            "plans": plans.options(service) if live else [],
            "pending": plans.pending(service) if live else None,
        }


class ServicePlanPage(ServiceFormPage):
    """``GET /services/{service_id}/plan?plan=<id>``: the cost of the chosen plan, and the
    confirm form; ``POST``: do it (SVC-3)."""

    template, schema, done = "services/plan.html", schemas.PlanForm, "applied"

    def apply(self, app, ctx, service, data):
        return plans.change(app, ctx, service, data["plan"], confirm=True)["done"]

    def on_get(self, req, resp, service_id):
        app, ctx = req.context.app, req.context
        service = _owned(req, service_id)
        try:
            quote = plans.change(app, ctx, service, req.get_param("plan") or "", confirm=False)
        except Problem as exc:
            refusal = exc.description or exc.title
            if getattr(exc, "errors", None):
                refusal = app.translator.gettext("This service cannot switch to that plan.")
            self._render(req, resp, service, refusal=refusal, status=int(exc.status_code))
            return
        self._render(req, resp, service, quote=quote)

    def _render(self, req, resp, service, errors=None, refusal=None, status=200, quote=None):
        req.context.extra["quote"] = quote
        super()._render(req, resp, service, errors=errors, refusal=refusal, status=status)

    def extra(self, req, service):
        return {"quote": req.context.extra.get("quote")}


class ServicePlanCancelPage(ServiceFormPage):
    """``POST /services/{service_id}/plan/cancel``: keep the current plan after all."""

    template, schema, done = "services/modify.html", schemas.EmptyForm, "kept"

    def apply(self, app, ctx, service, data):
        plans.cancel_pending(app, ctx, service)
        return None

    def extra(self, req, service):
        return ServiceModifyPage().extra(req, service)
