"""Top-ups: the JSON API and the portal pages over the same rules (``service.py``).

Every service and purchase is fetched through ``get_owned`` (another customer's
id is a 404). Buying goes through billing's payment flow; a repeated
``Idempotency-Key`` (the API) or the form's key (a double click) charges once.
"""

from __future__ import annotations

import functools
from decimal import Decimal

import falcon
from marshmallow import ValidationError

from engine import money
from engine.api import PageQuery, operation, paginate
from engine.catalogue import staff_api
from engine.context import get_owned
from engine.errors import Problem, invalid
from engine.forms import read_form, validate_form
from engine.i18n import N_
from engine.idempotency import idempotent
from engine.models import Service
from plugins.billing.public import Payment, PaymentMethod, checkout, payments, rate_limit_service
from plugins.topups import schemas, service as rules
from plugins.topups.models import TopupProduct, TopupPurchase

DONE = {"auto-saved": N_("Your auto top-up settings have been saved.")}


def owned_service(req, service_id) -> Service:
    return get_owned(Service, service_id, req.context)


def owned_purchase(req, service: Service, purchase_id) -> TopupPurchase:
    purchase = get_owned(TopupPurchase, purchase_id, req.context)
    if purchase.service_id != service.id:
        raise falcon.HTTPNotFound(title=N_("Not found"))
    return purchase


def default_card(customer_id: int) -> PaymentMethod | None:
    return payments.cards_of(customer_id).where(PaymentMethod.is_default).first()


def to_minor(value: Decimal | None, currency: str) -> int | None:
    """Pounds as typed (12.50) to minor units (1250); None stays None."""
    return None if value is None else money.to_minor(value, currency)


def auto_answer(app, service: Service) -> dict:
    status = rules.auto_status(app, service)
    if status is None:
        raise Problem(
            409,
            N_("Auto top-up is not available for this service"),
            N_("Only services that can buy credit can top it up automatically."),
            type="auto-topup-unavailable",
        )
    return {**status, "amounts": rules.auto_amounts(service)}


# -- JSON API ---------------------------------------------------------------------------------


class TopupsAPI:
    """``GET|POST /api/v1/services/{service_id}/topups``"""

    @operation("The top-ups this service can buy (TOP-2)", response=schemas.TopupCatalogue)
    def on_get(self, req, resp, service_id):
        return {"items": rules.offered(owned_service(req, service_id)), "next": None}

    @idempotent
    @operation(
        "Buy a top-up (TOP-1)",
        body=schemas.TopupPurchaseIn,
        response=schemas.TopupPurchaseOut,
        status=201,
        money=True,
        description="Charges a saved card (default: your default card) and credits the "
        "balance at once. 201: credited (`purchase.status` is `credited`). "
        "202 with `next_action`: the card asks for 3-D Secure; finish it, "
        "then POST `complete_url` and read the purchase again. 402: "
        "declined, nothing added. Send an `Idempotency-Key`: a retry with "
        "it charges once.",
    )
    def on_post(self, req, resp, service_id, body):
        app, ctx = req.context.app, req.context
        service = owned_service(req, service_id)
        choice = rules.choose(service, body["product_id"], body["amount"])
        method = payments.saved_card(app, ctx, body["payment_method_id"])
        if method is None:
            raise invalid({"payment_method_id": [N_("You have no saved card: add one first.")]})
        rate_limit_service(app, service)
        purchase, attempt = rules.buy(app, ctx, service, choice, method, via="api")
        answer = checkout.pay_answer(resp, attempt)
        answer["purchase"] = TopupPurchase.get_by_id(purchase.id)
        return answer


class ReviewAPI:
    """``GET /api/v1/services/{service_id}/topups/review``"""

    @operation(
        "Review a top-up before buying it: price, what is added, expiry, bucket order",
        query=schemas.TopupChoiceQuery,
        response=schemas.TopupReviewOut,
    )
    def on_get(self, req, resp, service_id, query):
        service = owned_service(req, service_id)
        choice = rules.choose(service, query["product_id"], query["amount"])
        return rules.review(req.context.app, service, choice)


class PurchasesAPI:
    """``GET /api/v1/services/{service_id}/topups/purchases``"""

    @operation(
        "The top-ups bought for this service, newest first",
        query=PageQuery,
        response=schemas.TopupPurchasePage,
    )
    def on_get(self, req, resp, service_id, query):
        service = owned_service(req, service_id)
        return paginate(rules.purchases_of(service), TopupPurchase.id, query)


class PurchaseAPI:
    """``GET /api/v1/services/{service_id}/topups/purchases/{purchase_id}``"""

    @operation("One top-up purchase", response=schemas.TopupPurchaseSchema)
    def on_get(self, req, resp, service_id, purchase_id):
        return owned_purchase(req, owned_service(req, service_id), purchase_id)


class AutoTopupAPI:
    """``GET|PUT /api/v1/services/{service_id}/auto-topup``"""

    @operation(
        "Auto top-up of this service's credit (TOP-3)",
        response=schemas.AutoTopupOut,
        errors={409: "Auto top-up is not available for this service"},
    )
    def on_get(self, req, resp, service_id):
        return auto_answer(req.context.app, owned_service(req, service_id))

    @operation(
        "Switch auto top-up on or off (TOP-3)",
        body=schemas.AutoTopupIn,
        response=schemas.AutoTopupOut,
        errors={409: "Auto top-up is not available for this service"},
        description="When credit falls below `threshold`, `amount` of credit is bought "
        "with your default card. Switching it on while already below the "
        "threshold buys at once. A failed charge switches it off.",
    )
    def on_put(self, req, resp, service_id, body):
        app, ctx = req.context.app, req.context
        service = owned_service(req, service_id)
        rules.set_auto(app, ctx, service, body["enabled"], body["threshold"], body["amount"])
        return auto_answer(app, service)


# -- staff: the catalogue -----------------------------------------------------------------------

StaffProductsAPI, StaffProductAPI = staff_api(
    TopupProduct,
    rules.save_product,
    noun="top-up",
    spec="TOP-2",
    entry=schemas.StaffTopupProductSchema,
    page=schemas.StaffTopupCatalogue,
    new=schemas.TopupProductIn,
    patch=schemas.TopupProductPatch,
)


# -- portal pages -------------------------------------------------------------------------------


def _section(req) -> None:
    req.context.extra["section"] = "topup"


class SectionPage:
    """``GET /topup``: the services that can be topped up, and the latest purchases."""

    def on_get(self, req, resp):
        app, ctx = req.context.app, req.context
        _section(req)
        customer_id = ctx.require_customer()
        services = [
            s
            for s in Service.select()
            .where((Service.customer == customer_id) & Service.status.in_(rules.LIVE))
            .order_by(Service.id)
            if rules.offered(s)
        ]
        recent = list(
            TopupPurchase.select(TopupPurchase, Service)
            .join(Service)
            .where(TopupPurchase.customer == customer_id)
            .order_by(TopupPurchase.id.desc())
            .limit(10)
        )
        app.page(
            req,
            resp,
            "topups/section.html",
            services=services,
            recent=recent,
            auto={s.id: rules.auto_status(app, s) for s in services},
        )


class CataloguePage:
    """``GET /services/{service_id}/topup``: choose a top-up and, for credit, an amount."""

    def on_get(self, req, resp, service_id):
        render_catalogue(req, resp, owned_service(req, service_id))


def render_catalogue(
    req,
    resp,
    service: Service,
    errors: dict | None = None,
    values: dict | None = None,
    status: int = 200,
) -> None:
    app = req.context.app
    _section(req)
    products = rules.offered(service)
    groups: dict[str, list] = {}
    for p in products:
        groups.setdefault(p.kind, []).append(p)
    app.page(
        req,
        resp,
        "topups/catalogue.html",
        status=status,
        service=service,
        groups=groups,
        auto=rules.auto_status(app, service),
        errors=errors or {},
        values=values or {},
        recent=list(rules.purchases_of(service).order_by(TopupPurchase.id.desc()).limit(5)),
    )


def read_choice(req, service: Service, params: dict) -> rules.Choice:
    """The product and amount of a form (pounds) as a checked ``Choice``; Problem 422 if not."""
    try:
        data = schemas.TopupChoiceForm().load(
            {k: params.get(k, "") for k in ("product_id", "amount")}, unknown="exclude"
        )
    except ValidationError as exc:
        raise invalid(exc.normalized_messages()) from None
    return rules.choose(service, data["product_id"], to_minor(data["amount"], service.currency))


class ReviewPage:
    """``GET /services/{service_id}/topup/review?product_id=..&amount=..``: review, then pay."""

    def on_get(self, req, resp, service_id):
        service = owned_service(req, service_id)
        try:
            choice = read_choice(req, service, req.params)
        except Problem as exc:
            render_catalogue(req, resp, service, errors=exc.errors, values=req.params, status=422)
            return
        render_review(req, resp, service, choice)


def render_review(
    req,
    resp,
    service: Service,
    choice: rules.Choice,
    *,
    error: str | None = None,
    errors: dict | None = None,
    status: int = 200,
) -> None:
    app = req.context.app
    _section(req)
    pay, error = checkout.pay_with(req, resp, service.customer_id, error)
    amount = None
    if choice.product.custom:
        amount = money.plain(choice.quantity, choice.currency)
    app.page(
        req,
        resp,
        "topups/review.html",
        status=status,
        service=service,
        review=rules.review(app, service, choice),
        amount=amount,
        idempotency_key=checkout.new_key(),
        error=error,
        errors=errors or {},
        **pay,
    )


class BuyPage:
    """``POST /services/{service_id}/topup``: the review page's pay form (TOP-1)."""

    def on_post(self, req, resp, service_id):
        app = req.context.app
        service = owned_service(req, service_id)
        try:
            choice = read_choice(req, service, read_form(req))
        except Problem as exc:
            render_catalogue(req, resp, service, errors=exc.errors, status=422)
            return
        paid = checkout.submit(
            req,
            order={"product": choice.product.id, "amount": choice.quantity},
            work=lambda data: self._buy(req, service, choice, data),
            show_form=functools.partial(render_review, req, resp, service, choice),
        )
        if paid is None:
            return
        purchase = TopupPurchase.get_by_id(paid.body["purchase_id"])
        if purchase.status == "failed":
            render_review(
                req,
                resp,
                service,
                choice,
                status=402,
                error=app.translator.gettext(purchase.failure_message),
            )
            return
        show_purchase(req, resp, service, purchase, paid.client_secret)

    @staticmethod
    def _buy(req, service: Service, choice: rules.Choice, data: dict) -> dict:
        app, ctx = req.context.app, req.context
        rate_limit_service(app, service)
        method = payments.chosen_card(app, ctx, data)
        purchase, attempt = rules.buy(app, ctx, service, choice, method, via="portal")
        return {"purchase_id": purchase.id, "client_secret": attempt.client_secret}


def show_purchase(
    req, resp, service: Service, purchase: TopupPurchase, client_secret: str = ""
) -> None:
    """Where a purchase stands: done (see the purchase page), or waiting for 3-D Secure."""
    app = req.context.app
    payment = Payment.get_by_id(purchase.payment_id) if purchase.payment_id else None
    url = f"/services/{service.id}/topup/purchases/{purchase.id}"
    if purchase.status != "pending" or payment is None or payment.status != "requires_action":
        raise falcon.HTTPSeeOther(url)
    provider = app.providers.get(payment.provider)
    if not client_secret and provider is not None:
        client_secret = payments.complete(app, payment).client_secret
    render_purchase(req, resp, service, purchase, payment, client_secret=client_secret)


def render_purchase(req, resp, service, purchase, payment, client_secret: str = "") -> None:
    app = req.context.app
    _section(req)
    provider = app.providers.get(payment.provider) if payment else None
    waiting = bool(payment is not None and payment.status == "requires_action" and provider)
    widget = checkout.challenge(resp, app, payment)[1] if waiting else {}
    app.page(
        req,
        resp,
        "topups/purchase.html",
        service=service,
        purchase=purchase,
        payment=payment,
        provider=provider,
        mode="authenticate",
        client_secret=client_secret,
        widget=widget,
        waiting=waiting,
        return_url=f"/services/{service.id}/topup/purchases/{purchase.id}",
        balances=app.plugins.hook.service_balances(app=app, service=service) or [],
    )


class PurchasePage:
    """``GET /services/{service_id}/topup/purchases/{purchase_id}``: the outcome; 3-D Secure
    returns here, and the outcome is recorded once."""

    def on_get(self, req, resp, service_id, purchase_id):
        app = req.context.app
        service = owned_service(req, service_id)
        purchase = owned_purchase(req, service, purchase_id)
        payment = Payment.get_by_id(purchase.payment_id) if purchase.payment_id else None
        client_secret = ""
        if purchase.status == "pending" and payment is not None:
            attempt = payments.complete(app, payment)
            payment, client_secret = attempt.payment, attempt.client_secret
            purchase = TopupPurchase.get_by_id(purchase.id)
        render_purchase(req, resp, service, purchase, payment, client_secret)


class AutoTopupPage:
    """``GET|POST /services/{service_id}/auto-topup``: threshold and amount (TOP-3)."""

    def on_get(self, req, resp, service_id):
        self.render(req, resp, owned_service(req, service_id))

    def on_post(self, req, resp, service_id):
        app, ctx = req.context.app, req.context
        service = owned_service(req, service_id)
        data, errors = validate_form(req, schemas.AutoTopupForm)
        if errors:
            self.render(req, resp, service, errors=errors, status=422)
            return
        try:
            rules.set_auto(
                app,
                ctx,
                service,
                data["enabled"],
                to_minor(data["threshold"], service.currency),
                to_minor(data["amount"], service.currency),
            )
        except Problem as exc:
            self.render(
                req,
                resp,
                service,
                errors=exc.errors or {},
                error=None if exc.errors else exc.title,
                status=int(exc.status_code),
            )
            return
        raise falcon.HTTPSeeOther(f"/services/{service.id}/auto-topup?done=auto-saved")

    @staticmethod
    def render(req, resp, service, errors=None, error=None, status=200) -> None:
        app = req.context.app
        _section(req)
        status_now = rules.auto_status(app, service)
        done = req.get_param("done")
        posted = req.context.extra.get("form") if errors else None
        app.page(
            req,
            resp,
            "topups/auto.html",
            status=status,
            service=service,
            auto=status_now,
            amounts=rules.auto_amounts(service),
            errors=errors or {},
            error=error,
            posted=posted,
            has_card=default_card(service.customer_id) is not None,
            refused=payments.saved_cards_refusal(app, req.context),
            credit=rules.credit_left(app, service) if status_now else None,
            flash=app.translator.gettext(DONE[done]) if done in DONE else None,
        )
