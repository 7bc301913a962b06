"""Add-ons: the JSON API and the portal pages over the same rules (``service.py``).

Services and add-ons are fetched through ``get_owned`` (another customer's id
is a 404). A one-off price is paid through billing's flow; a repeated
``Idempotency-Key`` (the API) or the form's key (a double click) orders once.
"""

from __future__ import annotations

import functools

import falcon
from marshmallow import ValidationError

from engine.api import operation
from engine.catalogue import staff_api
from engine.context import get_owned
from engine.errors import Problem, invalid
from engine.forms import read_form
from engine.i18n import N_
from engine.idempotency import idempotent
from engine.models import Service
from plugins.addons import schemas, service as rules
from plugins.addons.models import AddonProduct, ServiceAddon
from plugins.billing.public import Payment, checkout, payments, rate_limit_service

DONE = {"removing": N_("We are removing the add-on; this page shows when it is done.")}


def owned_service(req, service_id) -> Service:
    return get_owned(Service, service_id, req.context)


def owned_addon(req, service: Service, addon_id) -> ServiceAddon:
    addon = get_owned(ServiceAddon, addon_id, req.context)
    if addon.service_id != service.id:
        raise falcon.HTTPNotFound(title=N_("Not found"))
    return addon


def answer(resp, addon: ServiceAddon, attempt) -> dict:
    """The API's answer to an order: 201 ordered, 202 waiting for 3-D Secure, 402 declined."""
    out = (
        checkout.pay_answer(resp, attempt)
        if attempt is not None
        else {"payment": None, "invoice": None, "next_action": None}
    )
    out["addon"] = ServiceAddon.get_by_id(addon.id)
    return out


# -- JSON API -----------------------------------------------------------------------------------


class AddonsAPI:
    """``GET|POST /api/v1/services/{service_id}/addons``"""

    @operation(
        "Add-ons this service can take, and the ones it has (ADD-1)", response=schemas.AddonsOut
    )
    def on_get(self, req, resp, service_id):
        service = owned_service(req, service_id)
        return {
            "available": rules.offered(service),
            "next": None,
            "items": list(rules.addons_of(service).order_by(ServiceAddon.id.desc())),
        }

    @idempotent
    @operation(
        "Add an add-on to this service (ADD-2)",
        body=schemas.AddonOrderIn,
        response=schemas.AddonOrderOut,
        status=201,
        money=True,
        description="Charges the one-off price (if any) to a saved card, then sets the "
        "add-on up in the background: `addon.status` goes `pending` → "
        "`active` (or `failed`, and the one-off price is refunded); read it "
        "with GET .../addons/{id}. The recurring price is charged each "
        "period from activation. 202 with `next_action`: 3-D Secure. "
        "402: declined. 409: the service has this add-on already.",
    )
    def on_post(self, req, resp, service_id, body):
        app, ctx = req.context.app, req.context
        service = owned_service(req, service_id)
        product = rules.pick(service, body["product_id"])
        method = None
        if product.one_off_price > 0:
            method = payments.saved_card(app, ctx, body["payment_method_id"])
            rate_limit_service(app, service)
        addon, attempt = rules.order(app, ctx, service, product, method, via="api")
        return answer(resp, addon, attempt)


class ReviewAPI:
    """``GET /api/v1/services/{service_id}/addons/review``"""

    @operation(
        "Review an add-on before adding it: one-off and recurring cost (ADD-2)",
        query=schemas.AddonChoiceQuery,
        response=schemas.AddonReviewOut,
    )
    def on_get(self, req, resp, service_id, query):
        service = owned_service(req, service_id)
        return rules.review(service, rules.pick(service, query["product_id"]))


class AddonAPI:
    """``GET|DELETE /api/v1/services/{service_id}/addons/{addon_id}``"""

    @operation("One add-on of this service, with its status", response=schemas.AddonSchema)
    def on_get(self, req, resp, service_id, addon_id):
        return owned_addon(req, owned_service(req, service_id), addon_id)

    @operation(
        "Remove an add-on, where the product allows it",
        response=schemas.AddonSchema,
        status=202,
        description="`status` becomes `removing`, then `removed` once the "
        "network has taken it off; charges stop then. 409: "
        "not removable online, or not active.",
    )
    def on_delete(self, req, resp, service_id, addon_id):
        app, ctx = req.context.app, req.context
        addon = owned_addon(req, owned_service(req, service_id), addon_id)
        return rules.remove(app, ctx, addon)


# -- staff: the catalogue ----------------------------------------------------------------------

StaffProductsAPI, StaffProductAPI = staff_api(
    AddonProduct,
    rules.save_product,
    noun="add-on",
    spec="ADD-1",
    entry=schemas.StaffAddonProductSchema,
    page=schemas.StaffAddonCatalogue,
    new=schemas.AddonProductIn,
    patch=schemas.AddonProductPatch,
)


# -- portal pages ---------------------------------------------------------------------------------


def _section(req) -> None:
    req.context.extra["section"] = "services"


class AddonsPage:
    """``GET /services/{service_id}/addons``: browse, and the service's add-ons with status."""

    def on_get(self, req, resp, service_id):
        render_list(req, resp, owned_service(req, service_id))


def render_list(
    req, resp, service: Service, errors: dict | None = None, error: str = "", status: int = 200
) -> None:
    app = req.context.app
    _section(req)
    mine = list(rules.addons_of(service).order_by(ServiceAddon.id.desc()))
    live = {a.product_id for a in mine if a.live}
    done = req.get_param("done")
    app.page(
        req,
        resp,
        "addons/list.html",
        status=status,
        service=service,
        available=rules.offered(service),
        mine=mine,
        taken=live,
        errors=errors or {},
        error=error,
        flash=app.translator.gettext(DONE[done]) if done in DONE else None,
    )


class ReviewPage:
    """``GET /services/{service_id}/addons/review?product_id=..``: the cost, then confirm."""

    def on_get(self, req, resp, service_id):
        service = owned_service(req, service_id)
        try:
            product = pick_from(service, req.params)
        except Problem as exc:
            render_list(req, resp, service, errors=exc.errors, status=422)
            return
        render_review(req, resp, service, product)


def pick_from(service: Service, params: dict) -> AddonProduct:
    try:
        data = schemas.AddonChoiceQuery().load(
            {"product_id": params.get("product_id", "")}, unknown="exclude"
        )
    except ValidationError as exc:
        raise invalid(exc.normalized_messages()) from None
    return rules.pick(service, data["product_id"])


def render_review(
    req,
    resp,
    service: Service,
    product: AddonProduct,
    *,
    error: str | None = None,
    errors: dict | None = None,
    status: int = 200,
) -> None:
    app = req.context.app
    _section(req)
    pay: dict = {"cards": [], "provider": None, "setup": None, "widget": {}}
    if product.one_off_price > 0:
        pay, error = checkout.pay_with(req, resp, service.customer_id, error)
    app.page(
        req,
        resp,
        "addons/review.html",
        status=status,
        service=service,
        review=rules.review(service, product),
        idempotency_key=checkout.new_key(),
        error=error,
        errors=errors or {},
        **pay,
    )


class OrderPage:
    """``POST /services/{service_id}/addons/order``: the review page's confirm form (ADD-2)."""

    def on_post(self, req, resp, service_id):
        app = req.context.app
        service = owned_service(req, service_id)
        try:
            product = pick_from(service, read_form(req))
        except Problem as exc:
            render_list(req, resp, service, errors=exc.errors, status=422)
            return
        pay_now = product.one_off_price > 0
        paid = checkout.submit(
            req,
            order={"product": product.id},
            pay=pay_now,
            work=lambda data: self._order(req, service, product, data if pay_now else None),
            show_form=functools.partial(render_review, req, resp, service, product),
        )
        if paid is None:
            return
        addon = ServiceAddon.get_by_id(paid.body["addon_id"])
        if addon.status == "canceled":
            render_review(
                req,
                resp,
                service,
                product,
                status=402,
                error=app.translator.gettext(addon.failure_message),
            )
            return
        show_addon(req, resp, service, addon, paid.client_secret)

    @staticmethod
    def _order(req, service, product, data) -> dict:
        app, ctx = req.context.app, req.context
        method = None
        if data is not None:
            rate_limit_service(app, service)
            method = payments.chosen_card(app, ctx, data)
        addon, attempt = rules.order(app, ctx, service, product, method, via="portal")
        return {"addon_id": addon.id, "client_secret": attempt.client_secret if attempt else ""}


def show_addon(req, resp, service, addon: ServiceAddon, client_secret: str = "") -> None:
    """Waiting for 3-D Secure: the bank's step; otherwise the add-on's own page."""
    app = req.context.app
    payment = Payment.get_by_id(addon.payment_id) if addon.payment_id else None
    if addon.status != "awaiting_payment" or payment is None or payment.status != "requires_action":
        raise falcon.HTTPSeeOther(f"/services/{service.id}/addons/{addon.id}")
    if not client_secret:
        client_secret = payments.complete(app, payment).client_secret
    render_addon(req, resp, service, addon, payment, client_secret)


def render_addon(req, resp, service, addon, payment, client_secret: str = "") -> None:
    app = req.context.app
    _section(req)
    provider = app.providers.get(payment.provider) if payment else None
    waiting = bool(payment is not None and payment.status == "requires_action" and provider)
    widget = checkout.challenge(resp, app, payment)[1] if waiting else {}
    app.page(
        req,
        resp,
        "addons/addon.html",
        service=service,
        addon=addon,
        payment=payment,
        provider=provider,
        mode="authenticate",
        client_secret=client_secret,
        widget=widget,
        waiting=waiting,
        return_url=f"/services/{service.id}/addons/{addon.id}",
        flash=app.translator.gettext(DONE[req.get_param("done")])
        if req.get_param("done") in DONE
        else None,
    )


class AddonPage:
    """``GET /services/{service_id}/addons/{addon_id}``: its status (3-D Secure returns here)."""

    def on_get(self, req, resp, service_id, addon_id):
        app = req.context.app
        service = owned_service(req, service_id)
        addon = owned_addon(req, service, addon_id)
        payment = Payment.get_by_id(addon.payment_id) if addon.payment_id else None
        secret = ""
        if addon.status == "awaiting_payment" and payment is not None:
            attempt = payments.complete(app, payment)
            payment, secret = attempt.payment, attempt.client_secret
            addon = ServiceAddon.get_by_id(addon.id)
        render_addon(req, resp, service, addon, payment, secret)


class RemovePage:
    """``GET|POST /services/{service_id}/addons/{addon_id}/remove``: confirm, then remove."""

    def on_get(self, req, resp, service_id, addon_id):
        app = req.context.app
        service = owned_service(req, service_id)
        _section(req)
        app.page(
            req,
            resp,
            "addons/remove.html",
            service=service,
            addon=owned_addon(req, service, addon_id),
            error=None,
        )

    def on_post(self, req, resp, service_id, addon_id):
        app, ctx = req.context.app, req.context
        service = owned_service(req, service_id)
        addon = owned_addon(req, service, addon_id)
        try:
            rules.remove(app, ctx, addon)
        except Problem as exc:
            _section(req)
            app.page(
                req,
                resp,
                "addons/remove.html",
                status=int(exc.status_code),
                service=service,
                addon=addon,
                error=exc.title,
            )
            return
        raise falcon.HTTPSeeOther(f"/services/{service.id}/addons/{addon.id}?done=removing")
