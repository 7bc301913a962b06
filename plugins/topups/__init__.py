"""Top-ups (TOP-1..3): the operator's catalogue, buying a top-up, auto top-up of credit.

Money moves through billing's payment flow; balances change through the
``credit_balance`` hook (the usage plugin's buckets, or a partner's adapter).
"""

from __future__ import annotations

from engine import hookimpl
from engine.i18n import N_
from engine.registry import Route, Section


@hookimpl
def plugin_requires():
    return ["usage", "billing"]


@hookimpl
def register_settings():
    from plugins.topups.schemas import TopupSettings

    return TopupSettings


@hookimpl
def register_models():
    from plugins.topups.models import MODELS

    return list(MODELS)


@hookimpl
def register_sections(app):
    return [Section("topup", N_("Top-up"), "/topup", icon="topup", order=35)]


@hookimpl
def register_routes(app):
    from plugins.topups import resources as r

    api, svc = "/api/v1", "/services/{service_id}"
    return [
        Route(f"{api}{svc}/topups", r.TopupsAPI()),
        Route(f"{api}{svc}/topups/review", r.ReviewAPI()),
        Route(f"{api}{svc}/topups/purchases", r.PurchasesAPI()),
        Route(f"{api}{svc}/topups/purchases/{{purchase_id}}", r.PurchaseAPI()),
        Route(f"{api}{svc}/auto-topup", r.AutoTopupAPI()),
        Route(f"{api}/staff/topup-products", r.StaffProductsAPI(), permission="catalogue"),
        Route(
            f"{api}/staff/topup-products/{{product_id}}",
            r.StaffProductAPI(),
            permission="catalogue",
        ),
        Route("/topup", r.SectionPage()),
        Route(f"{svc}/topup", r.CataloguePage()),
        Route(f"{svc}/topup/review", r.ReviewPage()),
        Route(f"{svc}/topup/buy", r.BuyPage()),
        Route(f"{svc}/topup/purchases/{{purchase_id}}", r.PurchasePage()),
        Route(f"{svc}/auto-topup", r.AutoTopupPage()),
    ]


@hookimpl
def register_actors():
    from plugins.topups import tasks

    return [tasks.run_auto_topup, tasks.refund_purchase]


@hookimpl
def service_actions(app, ctx, service):
    from plugins.topups.cards import topup_action

    return topup_action(app, ctx, service)


@hookimpl
def dashboard_cards(app, ctx):
    from plugins.topups.cards import topup_card

    card = topup_card(app, ctx) if ctx.customer_id else None
    return [card] if card else []


@hookimpl
def portal_alerts(app, ctx):
    from plugins.topups.cards import topup_alerts

    return topup_alerts(app, ctx) if ctx.customer_id else []


@hookimpl
def auto_topup_status(app, service):
    from plugins.topups.service import auto_status

    return auto_status(app, service)


@hookimpl
def usage_rated(app, service, before, after):
    from plugins.topups.service import watch

    watch(app, service, before, after)


@hookimpl
def payment_succeeded(app, payment):
    if payment.purpose == "topup":
        from plugins.topups.service import credit

        credit(app, payment)


@hookimpl
def payment_failed(app, payment):
    if payment.purpose == "topup":
        from plugins.topups.service import declined

        declined(app, payment)


@hookimpl(trylast=True)  # after billing's demo, as billing's is after the services'
def demo_data(app, demo):
    from plugins.topups.demo import seed

    seed(app, demo)
